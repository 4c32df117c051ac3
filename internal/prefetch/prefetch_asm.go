//go:build amd64 || arm64

package prefetch

import "unsafe"

// line prefetches the cache line holding p into all cache levels.
//
//go:noescape
func line(p unsafe.Pointer)

// Package prefetch asks the CPU to start loading memory that the caller
// will read soon, without waiting for it.
//
// A plain load of a byte ahead of time (a "touch") also brings a cache line
// in, but the CPU cannot retire it, nor anything after it, until the line
// arrives: a loop that touches the events it will visit a few steps later
// still stalls on each miss once its reorder window fills. A prefetch
// instruction retires at once. On a structure larger than the caches,
// visited in an order the hardware prefetchers cannot guess (the events of
// a large room, reached through IDs), issuing the prefetches a few items
// ahead overlaps the misses instead of paying them one after another.
//
// The hints never change results. On architectures without an assembly
// version they do nothing.
package prefetch

import "unsafe"

// String hints that the first bytes of s will be read soon.
func String(s string) {
	if len(s) > 0 {
		line(unsafe.Pointer(unsafe.StringData(s)))
	}
}

// Pointer hints that the bytes at p will be read soon. p may be nil.
func Pointer(p unsafe.Pointer) {
	if p != nil {
		line(p)
	}
}

// Bytes hints that the first bytes of b will be read soon.
func Bytes(b []byte) {
	if len(b) > 0 {
		line(unsafe.Pointer(unsafe.SliceData(b)))
	}
}

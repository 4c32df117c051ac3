//go:build unix

package roomtest_test

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user and system CPU time, so benchmarks
// can report CPU per operation on a machine whose wall clock other
// processes share.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

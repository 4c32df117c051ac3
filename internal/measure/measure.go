// Package measure holds what the benchmarks of this repository (the
// packages' own and bench/) measure besides time per operation: the
// process's CPU time, which other processes on a shared machine move less
// than the wall clock, and the peak growth of the live heap while a
// function runs.
package measure

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ReportCPU runs f through b.Loop and reports the process's CPU time per
// iteration as cpu-ms/op beside the wall time (ns/op), which also counts
// the time spent waiting for a core. Where CPUTime is not measured the
// metric is not reported.
func ReportCPU(b *testing.B, f func()) {
	start := CPUTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if end := CPUTime(); n > 0 && end > 0 {
		b.ReportMetric(float64(end-start)/float64(n)/1e6, "cpu-ms/op")
	}
}

// PeakHeap runs f once, after a garbage collection, and returns the
// largest growth of the live heap objects while it ran, sampled every
// 200 µs and once at the end.
func PeakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	record := func() {
		if v := read(); v > peak.Load() {
			peak.Store(v)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			record()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	record()
	close(done)
	wg.Wait()
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

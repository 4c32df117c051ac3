package measure

import (
	"runtime"
	"testing"
)

var sink [][]byte

func TestPeakHeapSeesAnAllocationThatIsFreedAgain(t *testing.T) {
	const size = 64 << 20
	peak := PeakHeap(func() {
		sink = append(sink, make([]byte, size))
		sink = nil
	})
	if peak < size {
		t.Fatalf("peak %d, want at least %d", peak, size)
	}
	if none := PeakHeap(func() {}); none >= size {
		t.Fatalf("peak %d for a function that allocates nothing", none)
	}
}

func TestCPUTimeAdvancesWithWork(t *testing.T) {
	start := CPUTime()
	x := 0
	for i := range 200_000_000 {
		x ^= i
	}
	took := CPUTime() - start
	if start == 0 && took == 0 {
		t.Skip("CPU time is not measured on " + runtime.GOOS)
	}
	if took <= 0 {
		t.Fatalf("CPU time moved by %v over 200 million iterations (x=%d)", took, x)
	}
}

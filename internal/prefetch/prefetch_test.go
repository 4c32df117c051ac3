package prefetch

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestHintsAreHarmless calls each hint on empty, nil and edge inputs (a
// prefetch never faults, and the Go wrappers skip what has no address) and
// checks that memory is unchanged.
func TestHintsAreHarmless(t *testing.T) {
	buf := []byte("prefetch me")
	String("")
	String("x")
	String(string(buf))
	Bytes(nil)
	Bytes(buf[:0])
	Bytes(buf)
	Bytes(buf[len(buf)-1:])
	Pointer(nil)
	Pointer(unsafe.Pointer(&buf[0]))
	if string(buf) != "prefetch me" {
		t.Fatalf("memory changed: %q", buf)
	}
}

// BenchmarkRandomRead hashes 48 bytes of each of 1<<17 records of 256
// bytes (32 MB, beyond the caches) in a random order, with and without
// prefetching the record 8 reads ahead: the difference is what the hints
// buy on this machine when the work per record is long enough that the
// CPU does not reach the next record's loads by itself.
func BenchmarkRandomRead(b *testing.B) {
	const records, size = 1 << 17, 256
	data := make([]byte, records*size)
	order := rand.Perm(records)
	seed := maphash.MakeSeed()
	for _, ahead := range []int{0, 8} {
		b.Run(map[int]string{0: "plain", 8: "prefetch8"}[ahead], func(b *testing.B) {
			var sum uint64
			for b.Loop() {
				for i, r := range order {
					if ahead > 0 && i+ahead < len(order) {
						Pointer(unsafe.Pointer(&data[order[i+ahead]*size]))
					}
					sum += maphash.Bytes(seed, data[r*size:r*size+48])
				}
			}
			if sum == 0 {
				b.Fatal("hashed nothing")
			}
		})
	}
}

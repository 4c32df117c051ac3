package canonicaljson

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestSpecial8 compares the word-at-a-time test with the byte table:
// every byte value at every position among ordinary bytes (ASCII and
// not), and random words.
func TestSpecial8(t *testing.T) {
	check := func(w uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], w)
		want := false
		for _, c := range b {
			want = want || special[c]
		}
		if got := special8(w); got != want {
			t.Fatalf("%q: special8 %v, table %v", b, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := [8]byte{'a', 0xff, ' ', '~', 0x7f, 0x80, '#', 0xc3}
			b[pos] = byte(c)
			check(binary.LittleEndian.Uint64(b[:]))
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		w := r.Uint64()
		switch r.IntN(3) {
		case 0:
			w &= 0x7f7f7f7f7f7f7f7f // ASCII
		case 1:
			w |= 0x2020202020202020 // few control characters
		}
		check(w)
	}
}

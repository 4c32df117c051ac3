package canonicaljson

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestSafe8 compares the word-at-a-time test with the byte table: every
// byte value at every position among safe bytes, and random words.
func TestSafe8(t *testing.T) {
	check := func(w uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], w)
		want := true
		for _, c := range b {
			want = want && safe[c]
		}
		if got := safe8(w); got != want {
			t.Fatalf("%q: safe8 %v, table %v", b, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := [8]byte{'a', 'b', ' ', '~', 0x7f, '!', '#', '['}
			b[pos] = byte(c)
			check(binary.LittleEndian.Uint64(b[:]))
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		w := r.Uint64()
		if r.IntN(2) == 0 {
			w &= 0x7f7f7f7f7f7f7f7f // mostly ASCII
		}
		check(w)
	}
}

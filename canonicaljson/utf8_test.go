package canonicaljson

import (
	"testing"
	"unicode/utf8"
)

// TestUTF8LenMatchesStdlib compares the inline validator with
// unicode/utf8 on every 1- to 4-byte prefix shape that matters.
func TestUTF8LenMatchesStdlib(t *testing.T) {
	check := func(b []byte) {
		want := 0
		if r, n := utf8.DecodeRune(b); n >= 2 && r != utf8.RuneError {
			want = n
		}
		if got := utf8Len(b); got != want {
			t.Fatalf("% x: got %d, want %d", b, got, want)
		}
	}
	for c0 := 0x80; c0 <= 0xff; c0++ {
		for c1 := 0; c1 <= 0xff; c1++ {
			check([]byte{byte(c0), byte(c1)})
			for _, c2 := range []byte{0x00, 0x7f, 0x80, 0xbf, 0xc0} {
				check([]byte{byte(c0), byte(c1), c2})
				for _, c3 := range []byte{0x00, 0x80, 0xbf, 0xc0} {
					check([]byte{byte(c0), byte(c1), c2, c3})
				}
			}
		}
	}
}

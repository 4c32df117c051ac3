package canonicaljson

import (
	"strings"
	"testing"
)

func BenchmarkEscapes(b *testing.B) {
	in := []byte(`"` + strings.Repeat(`\u00e9\n`, 64<<10/8) + `"`)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Canonicalize(in); err != nil {
			b.Fatal(err)
		}
	}
}

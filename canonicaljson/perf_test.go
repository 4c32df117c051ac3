package canonicaljson

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// messageEvent is a ~1 KB m.room.message event with keys in scrambled order.
func messageEvent() []byte {
	return []byte(`{"unsigned":{"age":4612,"transaction_id":"m1700000000000.7"},"type":"m.room.message","signatures":{"example.org":{"ed25519:a_AbCd":"K8280/U9SJ+5rpb3uhsj2JM8VJTjMfWSm7S7hqTOYoYwKNMjzvZDzh8kWSW0p5X0Pc3Fv0LmSDV1DgyUSTkdBA"}},"room_id":"!jEsUZKDJdhlrceRyVU:example.org","sender":"@alice:example.org","origin_server_ts":1700000000000,"depth":12,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"prev_events":["$Ww0VDBBWQfDLmoPzmgPrmTVdaA0GfhoqzUsVW6vtkRI"],"auth_events":["$ijpGy5n3_QHFuqvE45tC1Qe4CKrQlxd0rvMqJYj1WvY","$7ehyfJSJHdvX8WkEUf0XIPhHwCmCakVnPE0Csg_rXVo","$NzSSX6uhLbaWGS6rM-v4tYzN5ybIeVvCGvYdaf8K1M0"],"content":{"msgtype":"m.text","format":"org.matrix.custom.html","body":"Hello everyone! This is a longer message body to bring the event to about one kilobyte, with some punctuation: quotes \"like this\", a backslash \\ and a tab\t. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.","formatted_body":"<p>Hello everyone! This is a <strong>longer</strong> message body.</p>","m.mentions":{"user_ids":["@bob:example.org"]}}}`)
}

// bigStateEvent is a ~60 KB state event with many keys and non-ASCII text,
// keys in scrambled order.
func bigStateEvent() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString(`{"type":"m.room.power_levels","state_key":"","sender":"@admin:example.org","room_id":"!room:example.org","origin_server_ts":1700000000000,"depth":5,"content":{"users":{`)
	for i := 0; i < 1200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"@usér_%05d_%s:exämple.org":%d`, (i*7919)%100000, []string{"日本語", "ü", "ñandú", "😀"}[i%4], r.IntN(100))
	}
	b.WriteString(`},"events":{"m.room.name":50,"m.room.avatar":50},"users_default":0,"notes":"`)
	for b.Len() < 60000 {
		b.WriteString("Grüße aus Köln — 東京 ")
	}
	b.WriteString(`"},"unsigned":{"age":1}}`)
	return []byte(b.String())
}

func TestAllocations(t *testing.T) {
	in := messageEvent()
	dst := make([]byte, 0, 2*len(in))
	n := testing.AllocsPerRun(200, func() {
		if _, err := Append(dst[:0], in, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 {
		t.Errorf("Append into a large enough buffer: %v allocations, want at most 1", n)
	}
	n = testing.AllocsPerRun(200, func() {
		if _, err := Canonicalize(in); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("Canonicalize of a 1 KB event: %v allocations, want at most 2", n)
	}
}

// TestLinearTime: inputs built to trigger quadratic behaviour finish fast.
func TestLinearTime(t *testing.T) {
	var keys strings.Builder
	keys.WriteByte('{')
	for i := 5000; i > 0; i-- {
		if i != 5000 {
			keys.WriteByte(',')
		}
		fmt.Fprintf(&keys, `"k%06d":%d`, i, i)
	}
	keys.WriteByte('}')
	inputs := map[string]string{
		"64KB of open brackets":  strings.Repeat("[", 64<<10),
		"64KB of nested objects": strings.Repeat(`{"a":`, 13000),
		"64KB of escapes":        `"` + strings.Repeat(`\u00e9\n`, 64<<10/8) + `"`,
		"64KB of surrogates":     `"` + strings.Repeat(`\ud83d\ude00`, 64<<10/12) + `"`,
		"5000 reversed keys":     keys.String(),
		"64KB of small arrays":   "[" + strings.Repeat("[],", 64<<10/3) + "[]]",
	}
	best := func(in string) time.Duration {
		// The best of a few runs resists noise.
		b := time.Hour
		for range 7 {
			start := time.Now()
			_, _ = Canonicalize([]byte(in))
			if d := time.Since(start); d < b {
				b = d
			}
		}
		return b
	}
	// A benign input of the same size, timed in the same moment, scales
	// the limit on a loaded machine: quadratic work on these inputs costs
	// hundreds of times the benign one, a busy machine only a few.
	benign := `{"a":"` + strings.Repeat("abcdefgh", 64<<10/8) + `"}`
	for name, in := range inputs {
		base := best(benign)
		took := best(in)
		limit := max(2*time.Millisecond, 40*base)
		if raceEnabled {
			limit *= 20
		}
		if took > limit {
			t.Errorf("%s: took %v (limit %v; a benign input of the same size took %v)", name, took, limit, base)
		}
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"1KB", messageEvent()}, {"60KB", bigStateEvent()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.in)))
			for b.Loop() {
				if _, err := Canonicalize(tc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendStrict(b *testing.B) {
	in := messageEvent()
	dst := make([]byte, 0, 2*len(in))
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Append(dst[:0], in, Options{Strict: true, Omit: []string{"signatures", "unsigned"}}); err != nil {
			b.Fatal(err)
		}
	}
}

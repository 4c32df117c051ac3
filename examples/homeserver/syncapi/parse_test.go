package syncapi

import (
	"strings"
	"testing"
)

func TestParsePos(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Pos
		bad  bool
	}{
		{"", Pos{}, false},
		{"s12", Pos{Events: 12}, false},
		{"s1_2_3_4_5_6_7", Pos{1, 2, 3, 4, 5, 6, 7}, false},
		{"s1_2", Pos{Events: 1, Typing: 2}, false},
		{"s1_2_3_4_5_6_7_8", Pos{}, true},
		{"t1", Pos{}, true},
		{"s-1", Pos{}, true},
		{"s1__2", Pos{}, true},
		{"s", Pos{}, true},
	} {
		got, err := ParsePos(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParsePos(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func FuzzParsePos(f *testing.F) {
	for _, s := range []string{"", "s0", "s1_2_3_4_5_6_7", "s9223372036854775807", "s1_", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePos(s)
		if err != nil {
			return
		}
		// What parses writes back as a token that parses to the same.
		again, err := ParsePos(p.String())
		if err != nil || again != p {
			t.Fatalf("%q: %v, round trip %v %v", s, p, again, err)
		}
	})
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"m.room.*", "m.room.message", true},
		{"m.room.*", "m.roo", false},
		{"*", "", true},
		{"m.*.message", "m.room.message", true},
		{"m.*.message", "m.room.messages", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"exact", "exact", true},
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`{}`, `{"room":{"timeline":{"limit":3,"types":["m.*"]},"state":{"lazy_load_members":true}}}`,
		`{"room":{"rooms":[]}}`, `[]`, `{"room":{"timeline":{"limit":-1}}}`, `{"event_format":"x"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter([]byte(s))
		if err != nil {
			return
		}
		if flt.Timeline.Limit < 0 || (strings.TrimSpace(s) != "" && strings.TrimSpace(s)[0] != '{') {
			t.Fatalf("%q accepted as %+v", s, flt)
		}
		flt.roomAllowed("!r:x")
		flt.Timeline.Matches("m.room.message", "@a:x")
	})
}

package id

import (
	"errors"
	"strings"
	"testing"
)

func TestServerName(t *testing.T) {
	valid := []struct {
		in   string
		host string
		port int
		ip   bool
	}{
		{"matrix.org", "matrix.org", 0, false},
		{"matrix.org:8888", "matrix.org", 8888, false},
		{"1.2.3.4", "1.2.3.4", 0, true},
		{"1.2.3.4:1234", "1.2.3.4", 1234, true},
		{"[1234:5678::abcd]", "1234:5678::abcd", 0, true},
		{"[1234:5678::abcd]:5678", "1234:5678::abcd", 5678, true},
		{"[::1]:65535", "::1", 65535, true},
		{"[::ffff:1.2.3.4]", "::ffff:1.2.3.4", 0, true},
		{"localhost:1", "localhost", 1, false},
		{"MATRIX.org", "MATRIX.org", 0, false},
		{"a-b.c-d", "a-b.c-d", 0, false},
		{strings.Repeat("a", 255), strings.Repeat("a", 255), 0, false},
	}
	for _, tc := range valid {
		sn, err := ParseServerName(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		port, has := sn.Port()
		if sn.String() != tc.in || sn.Host() != tc.host || port != tc.port || has != (tc.port != 0) || sn.IsIP() != tc.ip {
			t.Errorf("%q: got host %q port %d/%v ip %v", tc.in, sn.Host(), port, has, sn.IsIP())
		}
	}
	invalid := []struct {
		in   string
		want error
	}{
		{"", ErrInvalidServerName},
		{"matrix.org:", ErrInvalidServerName},
		{"matrix.org:123456", ErrInvalidServerName},
		{"matrix.org:0", ErrInvalidServerName},
		{"matrix.org:65536", ErrInvalidServerName},
		{"matrix.org:abc", ErrInvalidServerName},
		{"matrix.org:-1", ErrInvalidServerName},
		{"1234:5678::abcd", ErrInvalidServerName},
		{"[1234:5678::abcd", ErrInvalidServerName},
		{"[::g]", ErrInvalidServerName},
		{"[1.2.3.4]", ErrInvalidServerName},
		{"[::1]x", ErrInvalidServerName},
		{"[fe80::1%eth0]", ErrInvalidServerName},
		{"matrix_org.com", ErrInvalidServerName},
		{"exa mple.com", ErrInvalidServerName},
		{"1.2.3.256", ErrInvalidServerName},
		{":80", ErrInvalidServerName},
		{"host:80:80", ErrInvalidServerName},
		{"bücher.de", ErrInvalidServerName},
		{strings.Repeat("a", 256), ErrTooLong},
	}
	for _, tc := range invalid {
		if _, err := ParseServerName(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestUserID(t *testing.T) {
	for _, tc := range []struct {
		in         string
		local      string
		server     string
		historical bool
	}{
		{"@alice:example.org", "alice", "example.org", false},
		{"@a.b_c=d-e/f+g:example.org:8448", "a.b_c=d-e/f+g", "example.org:8448", false},
		{"@Alice:example.org", "Alice", "example.org", true},
		{"@:example.org", "", "example.org", true},
		{"@日本:[::1]", "日本", "[::1]", true},
		{"@a b:example.org", "a b", "example.org", true},
	} {
		u, err := ParseUserID(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if u.String() != tc.in || u.Localpart() != tc.local || u.Server().String() != tc.server || u.Historical() != tc.historical {
			t.Errorf("%q: got %q %q historical=%v", tc.in, u.Localpart(), u.Server(), u.Historical())
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrInvalidUserID},
		{"alice:example.org", ErrInvalidUserID},
		{"@alice", ErrInvalidUserID},
		{"@alice:", ErrInvalidServerName},
		{"@alice:bad_server", ErrInvalidUserID},
		{"@a\x00b:example.org", ErrInvalidUserID},
		{"@a\xffb:example.org", ErrInvalidUserID},
		{"@" + strings.Repeat("a", 250) + ":example.org", ErrTooLong},
	} {
		if _, err := ParseUserID(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestRoomAndEventIDs(t *testing.T) {
	r, err := ParseRoomID("!opaque:example.org")
	if sn, ok := r.Server(); err != nil || !ok || sn.String() != "example.org" || r.Opaque() != "opaque" {
		t.Fatalf("room ID with server: %v %v", r, err)
	}
	r, err = ParseRoomID("!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ")
	if _, ok := r.Server(); err != nil || ok || r.String() != "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ" {
		t.Fatalf("v12 room ID: %v %v", r, err)
	}
	for _, bad := range []string{"", "opaque:example.org", "!short", "!Nhcu5BS+UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ", "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYR", "!a:bad server", "!a\x00:x.org"} {
		if _, err := ParseRoomID(bad); !errors.Is(err, ErrInvalidRoomID) {
			t.Errorf("room ID %q: %v", bad, err)
		}
	}
	tests := []struct {
		in                    string
		server, base64, url64 bool
	}{
		{"$abc:example.org", true, false, false},
		{"$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk", false, true, false},
		{"$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", false, false, true},
		{"$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o", false, true, true},
	}
	for _, tc := range tests {
		e, err := ParseEventID(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if e.String() != tc.in || e.IsServerForm() != tc.server || e.IsBase64Form() != tc.base64 || e.IsURLSafeForm() != tc.url64 {
			t.Errorf("%q: server %v base64 %v urlsafe %v", tc.in, e.IsServerForm(), e.IsBase64Form(), e.IsURLSafeForm())
		}
	}
	for _, bad := range []string{"", "abc:example.org", "$abc", "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJ", "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk=", "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Z/", "$x:"} {
		if _, err := ParseEventID(bad); !errors.Is(err, ErrInvalidEventID) {
			t.Errorf("event ID %q: %v", bad, err)
		}
	}
}

func TestAliasAndKeyID(t *testing.T) {
	a, err := ParseRoomAlias("#room:example.org")
	if err != nil || a.Localpart() != "room" || a.Server().String() != "example.org" || a.String() != "#room:example.org" {
		t.Fatalf("alias: %v %v", a, err)
	}
	for _, bad := range []string{"room:example.org", "#room", "#room:", "!room:example.org"} {
		if _, err := ParseRoomAlias(bad); !errors.Is(err, ErrInvalidAlias) {
			t.Errorf("alias %q: %v", bad, err)
		}
	}
	k, err := ParseKeyID("ed25519:abc_1")
	if err != nil || k.Algorithm() != "ed25519" || k.Version() != "abc_1" || k.String() != "ed25519:abc_1" {
		t.Fatalf("key ID: %v %v", k, err)
	}
	if k, err := ParseKeyID("ed25519:ABC_x9"); err != nil || k.Version() != "ABC_x9" {
		t.Fatalf("upper-case version: %v", err)
	}
	for _, bad := range []string{"", "ed25519", "ed25519:", ":abc", "ed25519:a-b", "ed25519:a:b", "ED25519:a", "ed25519:ä"} {
		if _, err := ParseKeyID(bad); !errors.Is(err, ErrInvalidKeyID) {
			t.Errorf("key ID %q: %v", bad, err)
		}
	}
}

// FuzzParse: no panic, and whatever parses gives back its input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"matrix.org:8448", "[::1]:80", "@alice:example.org", "!a:b.c", "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg", "#a:b", "ed25519:a_1", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseServerName(s); err == nil && v.String() != s {
			t.Fatalf("server name %q -> %q", s, v)
		}
		if v, err := ParseUserID(s); err == nil && v.String() != s {
			t.Fatalf("user ID %q -> %q", s, v)
		}
		if v, err := ParseRoomID(s); err == nil && v.String() != s {
			t.Fatalf("room ID %q -> %q", s, v)
		}
		if v, err := ParseEventID(s); err == nil && v.String() != s {
			t.Fatalf("event ID %q -> %q", s, v)
		}
		if v, err := ParseRoomAlias(s); err == nil && v.String() != s {
			t.Fatalf("alias %q -> %q", s, v)
		}
		if v, err := ParseKeyID(s); err == nil && (v.String() != s || v.Algorithm()+":"+v.Version() != s) {
			t.Fatalf("key ID %q -> %q", s, v)
		}
	})
}

func BenchmarkParseUserID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseUserID("@alice.smith:matrix.example.org:8448"); err != nil {
			b.Fatal(err)
		}
	}
}

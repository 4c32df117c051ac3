package canonicaljson

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestVectors checks every pair in testdata byte for byte: the spec
// appendix's examples and derived extras. A vector that fails to load fails
// the test.
func TestVectors(t *testing.T) {
	ins, err := filepath.Glob("testdata/*.in.json")
	if err != nil || len(ins) < 12 {
		t.Fatalf("expected at least 12 vectors, found %d (%v)", len(ins), err)
	}
	for _, inPath := range ins {
		name := strings.TrimSuffix(filepath.Base(inPath), ".in.json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(inPath, ".in.json") + ".out.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Canonicalize(in)
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			// The canonical form is a fixed point.
			again, err := Canonicalize(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("not a fixed point: %s (%v)", again, err)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		strict bool
		want   error
		offset int64
	}{
		{"empty", ``, false, ErrSyntax, 0},
		{"bare word", `nul`, false, ErrSyntax, 0},
		{"NaN", `NaN`, false, ErrSyntax, 0},
		{"Infinity", `{"a":Infinity}`, false, ErrSyntax, 5},
		{"negative infinity", `[-Infinity]`, false, ErrSyntax, 1},
		{"trailing comma object", `{"a":1,}`, false, ErrSyntax, 7},
		{"trailing comma array", `[1,]`, false, ErrSyntax, 3},
		{"single quotes", `{'a':1}`, false, ErrSyntax, 1},
		{"unterminated string", `"abc`, false, ErrSyntax, 0},
		{"raw control char", "\"a\x01b\"", false, ErrSyntax, 2},
		{"bad escape", `"\x"`, false, ErrSyntax, 1},
		{"short unicode escape", `"\u12"`, false, ErrSyntax, 1},
		{"leading zero", `01`, false, ErrTrailingData, 1},
		{"plus sign", `+1`, false, ErrSyntax, 0},
		{"bare dot", `1.`, false, ErrSyntax, 0},
		{"bare exponent", `1e`, false, ErrSyntax, 0},
		{"invalid utf8", "\"a\xffb\"", false, ErrInvalidUTF8, 2},
		{"overlong utf8", "\"\xc0\xaf\"", false, ErrInvalidUTF8, 1},
		{"utf8 surrogate bytes", "\"\xed\xa0\x80\"", false, ErrInvalidUTF8, 1},
		{"invalid utf8 in key", "{\"\xfe\":1}", false, ErrInvalidUTF8, 2},
		{"lone high surrogate", `"\ud800"`, false, ErrSurrogate, 1},
		{"lone low surrogate", `"\udc00"`, false, ErrSurrogate, 1},
		{"high then non-surrogate", `"\ud800\u0041"`, false, ErrSurrogate, 1},
		{"high then text", `"\ud800abcdefg"`, false, ErrSurrogate, 1},
		{"two highs", `"\ud800\ud800"`, false, ErrSurrogate, 1},
		{"duplicate key", `{"a":1,"a":2}`, false, ErrDuplicateKey, 7},
		{"duplicate key after sorting", `{"b":1,"a":2,"b":3}`, false, ErrDuplicateKey, 0},
		{"duplicate key via escape", `{"a":1,"\u0061":2}`, false, ErrDuplicateKey, 7},
		{"duplicate nested", `{"x":{"k":1,"k":1}}`, false, ErrDuplicateKey, 12},
		{"trailing data", `{} {}`, false, ErrTrailingData, 3},
		{"trailing garbage", `1x`, false, ErrTrailingData, 1},
		{"too deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false, ErrTooDeep, MaxDepth},
		{"strict float", `{"a":1.5}`, true, ErrFloat, 5},
		{"strict integral float", `{"a":1.0}`, true, ErrFloat, 5},
		{"strict exponent", `[1e3]`, true, ErrFloat, 1},
		{"strict too big", `9007199254740992`, true, ErrNumberRange, 0},
		{"strict too small", `-9007199254740992`, true, ErrNumberRange, 0},
		{"strict far too big", `123456789012345678901234567890`, true, ErrNumberRange, 0},
		{"lenient huge exponent", `1e999999999999`, false, ErrNumberRange, 0},
		{"lenient long expansion", `1e5000`, false, ErrNumberRange, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Append(nil, []byte(tc.in), Options{Strict: tc.strict})
			if err == nil {
				t.Fatalf("accepted, output %q", got)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v does not wrap %v", err, tc.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *SyntaxError", err)
			}
			if se.Offset != tc.offset {
				t.Fatalf("offset %d, want %d (%v)", se.Offset, tc.offset, err)
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Fatalf("message does not name the offset: %v", err)
			}
		})
	}
}

func TestNumbers(t *testing.T) {
	tests := []struct{ in, lenient, strict string }{
		{`0`, `0`, `0`},
		{`-0`, `0`, `0`},
		{`-12`, `-12`, `-12`},
		{`9007199254740991`, `9007199254740991`, `9007199254740991`},
		{`-9007199254740991`, `-9007199254740991`, `-9007199254740991`},
		{`9007199254740992`, `9007199254740992`, ``},
		{`123456789012345678901234567890`, `123456789012345678901234567890`, ``},
		{`1e10`, `10000000000`, ``},
		{`1E+2`, `100`, ``},
		{`1.50e1`, `15`, ``},
		{`-2.0`, `-2`, ``},
		{`0.0`, `0`, ``},
		{`-0.0e5`, `0`, ``},
		{`0e999999999999`, `0`, ``},
		{`1.5`, `1.5`, ``},
		{`1.50`, `1.50`, ``},
		{`-1e-3`, `-1e-3`, ``},
		{`1e-999999999999`, `1e-999999999999`, ``},
		{`120e-1`, `12`, ``},
		{`125e-1`, `125e-1`, ``},
	}
	for _, tc := range tests {
		got, err := Canonicalize([]byte(tc.in))
		if err != nil || string(got) != tc.lenient {
			t.Errorf("lenient %s: got %q, %v; want %q", tc.in, got, err, tc.lenient)
		}
		got, err = CanonicalizeStrict([]byte(tc.in))
		if tc.strict == "" {
			if err == nil {
				t.Errorf("strict %s: accepted as %q", tc.in, got)
			}
		} else if err != nil || string(got) != tc.strict {
			t.Errorf("strict %s: got %q, %v; want %q", tc.in, got, err, tc.strict)
		}
	}
}

func TestOmit(t *testing.T) {
	in := `{"unsigned":{"age":1},"b":2,"signatures":{"x":{}},"a":{"unsigned":3},"hashes":{}}`
	tests := []struct {
		omit []string
		want string
	}{
		{nil, `{"a":{"unsigned":3},"b":2,"hashes":{},"signatures":{"x":{}},"unsigned":{"age":1}}`},
		{[]string{"signatures", "unsigned"}, `{"a":{"unsigned":3},"b":2,"hashes":{}}`},
		{[]string{"signatures", "unsigned", "hashes"}, `{"a":{"unsigned":3},"b":2}`},
		{[]string{"a", "b", "hashes", "signatures", "unsigned"}, `{}`},
		{[]string{"unsigned"}, `{"a":{"unsigned":3},"b":2,"hashes":{},"signatures":{"x":{}}}`},
	}
	for _, tc := range tests {
		got, err := Append([]byte("prefix:"), []byte(in), Options{Omit: tc.omit})
		if err != nil || string(got) != "prefix:"+tc.want {
			t.Errorf("omit %v: got %s, %v; want prefix:%s", tc.omit, got, err, tc.want)
		}
	}
	// Sorted input with the omitted key first and last.
	got, err := Append(nil, []byte(`{"a":1,"b":2,"c":3}`), Options{Omit: []string{"a", "c"}})
	if err != nil || string(got) != `{"b":2}` {
		t.Errorf("sorted omit: %s %v", got, err)
	}
	// An omitted key still counts for the duplicate check.
	if _, err := Append(nil, []byte(`{"unsigned":1,"unsigned":2}`), Options{Omit: []string{"unsigned"}}); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate omitted key: %v", err)
	}
	// Omit applies to the top level only; an array is left alone.
	got, err = Append(nil, []byte(`[{"unsigned":1}]`), Options{Omit: []string{"unsigned"}})
	if err != nil || string(got) != `[{"unsigned":1}]` {
		t.Errorf("array: %s %v", got, err)
	}
}

func TestAppendKeepsDstOnError(t *testing.T) {
	dst := []byte("keep")
	out, err := Append(dst, []byte(`{"a":`), Options{})
	if err == nil || string(out) != "keep" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestMarshal(t *testing.T) {
	v := map[string]any{
		"z":    []any{1, "x<y>&", 3.0},
		"a":    map[string]any{"\u2028": true, "b": nil},
		"big":  1e21,
		"html": "<script>",
	}
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"a\":{\"b\":null,\"\u2028\":true},\"big\":1000000000000000000000,\"html\":\"<script>\",\"z\":[1,\"x<y>&\",3]}"
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := Marshal(func() {}); err == nil {
		t.Fatal("marshalling a func succeeded")
	}
}

// TestDifferential: for a corpus of JSON texts, the canonical form means the
// same to encoding/json as the input.
func TestDifferential(t *testing.T) {
	corpus := []string{
		`{"a":[1,2,{"c":"d","b":[]}],"e":"\u00e9\n\t\"\\\/","f":null,"g":true,"h":false}`,
		`[0,-1,123456789,"",{},[],[[]],{"":{"":""}}]`,
		`{"emoji":"\ud83d\ude00","nul":"\u0000","del":"\u007f","ls":"\u2028"}`,
		`"just a string"`, `42`, `true`, `null`,
		`{"k9":1,"k10":2,"K":3,"k":4,"ä":5,"z":6}`,
	}
	for _, s := range corpus {
		out, err := Canonicalize([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		assertSameMeaning(t, []byte(s), out)
	}
}

func assertSameMeaning(t *testing.T, in, out []byte) {
	t.Helper()
	var a, b any
	da := json.NewDecoder(bytes.NewReader(in))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(out))
	db.UseNumber()
	if err := da.Decode(&a); err != nil {
		t.Fatalf("input does not decode: %v", err)
	}
	if err := db.Decode(&b); err != nil {
		t.Fatalf("output %q does not decode: %v", out, err)
	}
	normaliseNumbers(&a)
	normaliseNumbers(&b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("meaning changed:\n in  %s\n out %s", in, out)
	}
}

// normaliseNumbers replaces json.Number values by their canonical text so
// that 1e2 and 100 compare equal.
func normaliseNumbers(v *any) {
	switch x := (*v).(type) {
	case json.Number:
		if c, err := Canonicalize([]byte(x)); err == nil {
			*v = string(c)
		}
	case []any:
		for i := range x {
			normaliseNumbers(&x[i])
		}
	case map[string]any:
		for k, e := range x {
			normaliseNumbers(&e)
			x[k] = e
		}
	}
}

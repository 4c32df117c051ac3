package event

import (
	"errors"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/hashing"
)

// The steps of Parse, each on its own.

func TestEnvelopeStep(t *testing.T) {
	r := rules(t, "12")
	for _, tc := range []struct {
		name string
		raw  string
		want error
	}{
		{"ok", v12Join, nil},
		{"not JSON", `{"a":`, ErrBadJSON},
		{"floats are not canonical in strict versions", `{"a":1.5}`, ErrBadJSON},
		{"larger than 4*MaxSize", `{"a":"` + strings.Repeat("x", 4*MaxSize) + `"}`, ErrTooLarge},
		{"canonical form larger than MaxSize", `{"a":"` + strings.Repeat("x", MaxSize) + `"}`, ErrTooLarge},
	} {
		var env envelope
		err := env.read(r, []byte(tc.raw))
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil && env.text != tc.raw {
			t.Errorf("%s: copy %q differs from the input", tc.name, env.text)
		}
	}
	// The copy does not change with the input.
	raw := []byte(v12Join)
	var env envelope
	if err := env.read(r, raw); err != nil {
		t.Fatal(err)
	}
	raw[2] = 'X'
	if env.text != v12Join {
		t.Fatal("the envelope shares the caller's bytes")
	}
}

func TestFieldsStep(t *testing.T) {
	var f fields
	if err := f.split(`[1]`); !errors.Is(err, ErrBadJSON) {
		t.Fatalf("array: %v, want ErrBadJSON", err)
	}
	if err := f.split(`{"type":"t","content":{"a":1},"unknown":1,"depth":3}`); err != nil {
		t.Fatal(err)
	}
	if f.typ.Str != "t" || f.content.Raw != `{"a":1}` || f.depth.Int() != 3 || f.sender.Exists() {
		t.Fatalf("fields %+v", f)
	}
}

// fieldsOf splits a JSON object for the step tests.
func fieldsOf(t *testing.T, text string) fields {
	t.Helper()
	var f fields
	if err := f.split(text); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestTopLevelStep(t *testing.T) {
	r := rules(t, "12")
	ok := `"content":{"membership":"join"},"depth":2,"hashes":{"sha256":"x"},"origin_server_ts":5,"sender":"@a:d","signatures":{},"state_key":"@a:d","type":"m.room.member"`
	p := PDU{rules: &r}
	if err := p.readTopLevel(ptr(fieldsOf(t, `{`+ok+`,"unsigned":{"age":1},"origin":"d"}`))); err != nil {
		t.Fatal(err)
	}
	if p.typ != "m.room.member" || p.sender != "@a:d" || !p.isState || p.stateKey != "@a:d" || p.member != "join" ||
		p.depth != 2 || p.ts != 5 || string(p.unsigned) != `{"age":1}` || p.origin != "d" || string(p.content) != `{"membership":"join"}` {
		t.Fatalf("read type %q sender %q state key %q membership %q depth %d ts %d", p.typ, p.sender, p.stateKey, p.member, p.depth, p.ts)
	}
	for _, tc := range []struct {
		name, replace, with string
		want                error
	}{
		{"no type", `"type":"m.room.member"`, `"x":1`, ErrMissingField},
		{"sender not a user ID", `"sender":"@a:d"`, `"sender":"a"`, ErrBadField},
		{"state_key not a string", `"state_key":"@a:d"`, `"state_key":1`, ErrBadField},
		{"no content", `"content":{"membership":"join"}`, `"x":1`, ErrMissingField},
		{"depth a float", `"depth":2`, `"depth":2.5`, ErrBadField},
		{"ts too large", `"origin_server_ts":5`, `"origin_server_ts":9007199254740992`, ErrBadField},
		{"no hashes", `"hashes":{"sha256":"x"}`, `"x":1`, ErrMissingField},
		{"signatures not an object", `"signatures":{}`, `"signatures":[]`, ErrBadField},
	} {
		text := `{` + strings.Replace(ok, tc.replace, tc.with, 1) + `}`
		p := PDU{rules: &r}
		if err := p.readTopLevel(ptr(fieldsOf(t, text))); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestReferencesStep(t *testing.T) {
	id := "$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"
	p := PDU{rules: ptr(rules(t, "12"))}
	if err := p.readReferences(ptr(fieldsOf(t, `{"prev_events":["`+id+`"],"auth_events":[]}`))); err != nil {
		t.Fatal(err)
	}
	if len(p.prev) != 1 || p.prev[0] != id || p.auth == nil || len(p.auth) != 0 {
		t.Fatalf("prev %v auth %v", p.prev, p.auth)
	}
	for _, tc := range []struct {
		name, v, text string
	}{
		{"missing auth_events", "12", `{"prev_events":[]}`},
		{"pair in a version without hashes", "12", `{"prev_events":[["` + id + `",{}]],"auth_events":[]}`},
		{"plain ID in a version with hashes", "1", `{"prev_events":["$a:d"],"auth_events":[]}`},
		{"listed twice", "12", `{"prev_events":[],"auth_events":["` + id + `","` + id + `"]}`},
	} {
		p := PDU{rules: ptr(rules(t, tc.v))}
		if err := p.readReferences(ptr(fieldsOf(t, tc.text))); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestIdentifiersStep(t *testing.T) {
	const ev = "$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"
	for _, tc := range []struct {
		name, v, typ, text string
		want               error
		roomID, redacts    string
	}{
		{"room ID with a server before 12", "11", "m.room.topic", `{"room_id":"!r:d"}`, nil, "!r:d", ""},
		{"room ID without a server in 12", "12", "m.room.topic", `{"room_id":"!r:d"}`, ErrBadField, "", ""},
		{"no room ID", "11", "m.room.topic", `{}`, ErrMissingField, "", ""},
		{"v12 create without room ID", "12", "m.room.create", `{}`, nil, "", ""},
		{"v12 create with room ID", "12", "m.room.create", `{"room_id":"!r"}`, ErrBadField, "", ""},
		{"redacts top-level in 10", "10", "m.room.redaction", `{"room_id":"!r:d","redacts":"` + ev + `"}`, nil, "!r:d", ev},
		{"redacts missing in 10", "10", "m.room.redaction", `{"room_id":"!r:d"}`, ErrMissingField, "", ""},
		{"redacts in content from 11", "11", "m.room.redaction", `{"room_id":"!r:d","content":{"redacts":"` + ev + `"}}`, nil, "!r:d", ev},
		{"redacts optional from 11", "11", "m.room.redaction", `{"room_id":"!r:d","content":{}}`, nil, "!r:d", ""},
		{"redacts in the wrong format", "3", "m.room.redaction", `{"room_id":"!r:d","redacts":"$a:d"}`, ErrBadField, "", ""},
	} {
		p := PDU{typ: tc.typ, rules: ptr(rules(t, tc.v))}
		err := p.readIdentifiers(ptr(fieldsOf(t, tc.text)))
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil && (p.roomID != tc.roomID || p.redacts != tc.redacts) {
			t.Errorf("%s: room ID %q redacts %q", tc.name, p.roomID, p.redacts)
		}
	}
}

func TestEventIDStep(t *testing.T) {
	// Server-generated IDs come from event_id.
	p := PDU{rules: ptr(rules(t, "1"))}
	var env envelope
	if err := p.setEventID(ptr(fieldsOf(t, `{"event_id":"$a:d"}`)), &env); err != nil || p.eventID != "$a:d" {
		t.Fatalf("v1: %q, %v", p.eventID, err)
	}
	if err := p.setEventID(ptr(fieldsOf(t, `{"event_id":"$abc"}`)), &env); !errors.Is(err, ErrBadField) {
		t.Fatalf("v1 ID without a server: %v", err)
	}
	p = PDU{rules: ptr(rules(t, "2"))}
	if err := p.setEventID(ptr(fieldsOf(t, `{}`)), &env); !errors.Is(err, ErrMissingField) {
		t.Fatalf("v2 without event_id: %v", err)
	}
	// Computed IDs are the reference hash; a v12 create event also gets
	// its room ID from it.
	r := rules(t, "12")
	if err := env.read(r, []byte(v12Create)); err != nil {
		t.Fatal(err)
	}
	p = PDU{typ: "m.room.create", rules: &r}
	if err := p.setEventID(ptr(fieldsOf(t, env.text)), &env); err != nil {
		t.Fatal(err)
	}
	want, err := hashing.EventID(r, []byte(v12Create))
	if err != nil {
		t.Fatal(err)
	}
	if p.eventID != want || p.roomID != "!"+want[1:] {
		t.Fatalf("event ID %q room ID %q, want %q", p.eventID, p.roomID, want)
	}
}

func ptr[T any](v T) *T { return &v }

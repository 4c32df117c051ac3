package eventauth

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// TestEscapedKeys: a content key spelled with JSON escapes is the same key.
// The create event below says "m\u002efederate": false, which is
// m.federate false; another server must not get in.
func TestEscapedKeys(t *testing.T) {
	for _, rules := range roomversion.All() {
		r := newTestRoom(t, rules)
		create := r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""),
			Content: `{"creator":"@a:x","m.federate":false}`})
		raw := bytes.Replace(create.JSON(), []byte(`"m.federate"`), []byte(`"m\u002efederate"`), 1)
		if bytes.Equal(raw, create.JSON()) {
			t.Fatal("no m.federate key to rewrite")
		}
		escaped, err := event.Parse(rules, raw)
		if err != nil {
			t.Fatalf("room version %s: %v", rules.ID, err)
		}
		r.add(escaped)
		r.add(r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk("@a:x"), Content: `{"membership":"join"}`}))
		r.add(r.build(eventSpec{Type: typeJoinRules, Sender: "@a:x", StateKey: sk(""), Content: `{"join_rule":"public"}`}))
		join := r.build(eventSpec{Type: typeMember, Sender: "@b:y", StateKey: sk("@b:y"), Content: `{"membership":"join"}`})
		if err := Check(join, r.state); !errors.Is(err, ErrFederate) {
			t.Fatalf("room version %s: join from another server: %v", rules.ID, err)
		}
	}
	for _, c := range []struct {
		content, key, want string
	}{
		{`{"join_rule":"public"}`, "join_rule", "public"},
		{`{"join\u005frule":"public"}`, "join_rule", "public"},
		{`{"join_rule":"p\u0075blic"}`, "join_rule", "public"},
		{`{"other":"join_rule"}`, "join_rule", ""},
		{`{"a":{"join_rule":"x"}}`, "join_rule", ""},
		{`{}`, "join_rule", ""},
		{``, "join_rule", ""},
	} {
		if got, _ := contentString([]byte(c.content), c.key); got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.content, c.key, got, c.want)
		}
	}
}

package eventauth

import (
	"reflect"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func TestAuthEventsNeeded(t *testing.T) {
	create := StateKey{Type: typeCreate}
	pl := StateKey{Type: typePowerLevels}
	jr := StateKey{Type: typeJoinRules}
	mem := func(u string) StateKey { return StateKey{Type: typeMember, StateKey: u} }
	cases := []struct {
		name                  string
		typ, stateKey, sender string
		content               string
		want                  []StateKey // without the create event
		restrictedOnly        []StateKey // appended when the version has restricted joins
		noneAtAll             bool
	}{
		{name: "create", typ: typeCreate, stateKey: "", sender: "@a:x", content: `{}`, noneAtAll: true},
		{name: "message", typ: "m.room.message", sender: "@a:x", content: `{"body":"hi"}`,
			want: []StateKey{pl, mem("@a:x")}},
		{name: "state event", typ: "m.room.topic", stateKey: "", sender: "@a:x", content: `{}`,
			want: []StateKey{pl, mem("@a:x")}},
		{name: "own join", typ: typeMember, stateKey: "@a:x", sender: "@a:x", content: `{"membership":"join"}`,
			want: []StateKey{pl, mem("@a:x"), jr}},
		{name: "invite", typ: typeMember, stateKey: "@b:y", sender: "@a:x", content: `{"membership":"invite"}`,
			want: []StateKey{pl, mem("@a:x"), mem("@b:y"), jr}},
		{name: "knock", typ: typeMember, stateKey: "@b:y", sender: "@b:y", content: `{"membership":"knock"}`,
			want: []StateKey{pl, mem("@b:y"), jr}},
		{name: "kick", typ: typeMember, stateKey: "@b:y", sender: "@a:x", content: `{"membership":"leave"}`,
			want: []StateKey{pl, mem("@a:x"), mem("@b:y")}},
		{name: "ban", typ: typeMember, stateKey: "@b:y", sender: "@a:x", content: `{"membership":"ban"}`,
			want: []StateKey{pl, mem("@a:x"), mem("@b:y")}},
		{name: "third-party invite", typ: typeMember, stateKey: "@b:y", sender: "@a:x",
			content: `{"membership":"invite","third_party_invite":{"signed":{"token":"tok","mxid":"@b:y"}}}`,
			want:    []StateKey{pl, mem("@a:x"), mem("@b:y"), jr, {Type: typeThirdPartyInvite, StateKey: "tok"}}},
		{name: "third-party invite with a non-string token", typ: typeMember, stateKey: "@b:y", sender: "@a:x",
			content: `{"membership":"invite","third_party_invite":{"signed":{"token":5}}}`,
			want:    []StateKey{pl, mem("@a:x"), mem("@b:y"), jr}},
		{name: "third_party_invite on a join is ignored", typ: typeMember, stateKey: "@b:y", sender: "@b:y",
			content: `{"membership":"join","third_party_invite":{"signed":{"token":"tok"}}}`,
			want:    []StateKey{pl, mem("@b:y"), jr}},
		{name: "restricted join", typ: typeMember, stateKey: "@b:y", sender: "@b:y",
			content:        `{"membership":"join","join_authorised_via_users_server":"@a:x"}`,
			want:           []StateKey{pl, mem("@b:y"), jr},
			restrictedOnly: []StateKey{mem("@a:x")}},
		{name: "authorising user is the joiner", typ: typeMember, stateKey: "@b:y", sender: "@b:y",
			content: `{"membership":"join","join_authorised_via_users_server":"@b:y"}`,
			want:    []StateKey{pl, mem("@b:y"), jr}},
		{name: "join_authorised_via_users_server on a leave", typ: typeMember, stateKey: "@b:y", sender: "@b:y",
			content: `{"membership":"leave","join_authorised_via_users_server":"@a:x"}`,
			want:    []StateKey{pl, mem("@b:y")}},
		{name: "member content that is not an object", typ: typeMember, stateKey: "@b:y", sender: "@b:y",
			content: `[1]`, want: []StateKey{pl, mem("@b:y")}},
		{name: "membership that is not a string", typ: typeMember, stateKey: "@b:y", sender: "@b:y",
			content: `{"membership":1}`, want: []StateKey{pl, mem("@b:y")}},
	}
	for _, rules := range roomversion.All() {
		for _, c := range cases {
			got := AuthEventsNeeded(rules, c.typ, c.stateKey, c.sender, []byte(c.content))
			var want []StateKey
			if !c.noneAtAll {
				if rules.CreateEventInAuthEvents {
					want = append(want, create)
				}
				want = append(want, c.want...)
				if rules.RestrictedJoins {
					want = append(want, c.restrictedOnly...)
				}
			}
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("room version %s, %s: got %v, want %v", rules.ID, c.name, got, want)
			}
		}
	}
}

// TestSelectedMatchesNeeded checks that the auth events rule's membership
// test agrees with AuthEventsNeeded on the keys it returns and refuses
// others.
func TestSelectedMatchesNeeded(t *testing.T) {
	for _, rules := range roomversion.All() {
		r := newTestRoom(t, rules)
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{"creator":"@a:x"}`}))
		specs := []eventSpec{
			{Type: "m.room.message", Sender: "@a:x", Content: `{}`},
			{Type: typeMember, Sender: "@b:y", StateKey: sk("@b:y"),
				Content: `{"membership":"join","join_authorised_via_users_server":"@a:x"}`},
			{Type: typeMember, Sender: "@a:x", StateKey: sk("@b:y"),
				Content: `{"membership":"invite","third_party_invite":{"signed":{"token":"t"}}}`},
		}
		others := []StateKey{{Type: typeMember, StateKey: "@z:z"}, {Type: typeThirdPartyInvite, StateKey: "u"},
			{Type: "m.room.topic"}, {Type: typePowerLevels, StateKey: "x"}, {Type: typeCreate, StateKey: "x"}}
		for _, spec := range specs {
			ev := r.build(spec)
			c := checker{v: &rules, ev: ev, sender: ev.Sender()}
			key, _ := ev.StateKey()
			needed := AuthEventsNeeded(rules, ev.Type(), key, ev.Sender(), ev.Content())
			for _, k := range needed {
				if !c.selected(k) {
					t.Errorf("room version %s, %s: %v needed but not selected", rules.ID, spec.Type, k)
				}
			}
			for _, k := range others {
				if c.selected(k) {
					t.Errorf("room version %s, %s: %v selected but not needed", rules.ID, spec.Type, k)
				}
			}
			if c.selected(StateKey{Type: typeCreate}) != rules.CreateEventInAuthEvents {
				t.Errorf("room version %s: create selection wrong", rules.ID)
			}
		}
	}
}

package eventauth

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// FuzzCheck feeds every entry point with an event and a state that passed
// event.Parse: nothing may panic, and a rejection must be an *Error with a
// rule code. Inputs: the room version's index, the event's JSON, and the
// state as a JSON array of events. Seeds are the vector rooms.
func FuzzCheck(f *testing.F) {
	all := roomversion.All()
	for _, vec := range loadVectors(f) {
		for _, v := range []int{1, 10, 12} {
			if _, ok := vec.expect[v]; !ok {
				continue
			}
			state, ev, ok := vectorRoom(f, vec, all[v-1])
			if !ok {
				continue
			}
			var raws []json.RawMessage
			for _, s := range state {
				raws = append(raws, json.RawMessage(s.JSON()))
			}
			arr, _ := json.Marshal(raws)
			f.Add(uint8(v-1), ev.JSON(), arr)
		}
	}
	// A state whose power levels cannot be read (TestUnreadableState).
	for _, v := range []int{1, 10, 12} {
		r := newTestRoom(f, all[v-1])
		r.add(r.build(eventSpec{Type: typeCreate, Sender: "@a:x", StateKey: sk(""), Content: `{"creator":"@a:x"}`}))
		r.add(r.build(eventSpec{Type: typeMember, Sender: "@a:x", StateKey: sk("@a:x"), Content: `{"membership":"join"}`}))
		r.add(r.build(eventSpec{Type: typePowerLevels, Sender: "@a:x", StateKey: sk(""), Content: `{"users":[1]}`}))
		var raws []json.RawMessage
		for _, s := range r.all {
			raws = append(raws, json.RawMessage(s.JSON()))
		}
		arr, _ := json.Marshal(raws)
		msg := r.build(eventSpec{Type: "m.room.message", Sender: "@a:x", Content: `{}`})
		f.Add(uint8(v-1), msg.JSON(), arr)
	}
	f.Fuzz(func(t *testing.T, ver uint8, evJSON, stateJSON []byte) {
		rules := all[int(ver)%len(all)]
		ev, err := event.Parse(rules, evJSON)
		if err != nil {
			return
		}
		state := StateMap{}
		var events []*event.PDU
		var create *event.PDU
		gjson.ParseBytes(stateJSON).ForEach(func(_, raw gjson.Result) bool {
			s, err := event.Parse(rules, []byte(raw.Raw))
			if err == nil {
				state.Add(s)
				events = append(events, s)
				if s.Type() == typeCreate {
					create = s
				}
			}
			return len(events) < 64
		})
		verify := func(rule string, err error) {
			if err == nil {
				if rule == "" || strings.Contains(rule, "?") {
					t.Fatalf("allowed without a rule code: %q", rule)
				}
				return
			}
			if ae, ok := err.(*Error); ok {
				if ae.Rule == "" || strings.Contains(ae.Rule, "?") || ae.Reason == "" {
					t.Fatalf("bad rejection %+v", ae)
				}
			}
		}
		rule, err := CheckWithOptions(ev, state, Options{})
		verify(rule, err)
		if err == nil && ev.Type() == typePowerLevels {
			// An accepted power levels event must be readable as state.
			if _, perr := ev.PowerLevels(); perr != nil {
				t.Fatalf("power levels allowed by rule %s but unreadable: %v", rule, perr)
			}
		}
		_ = Check(ev, state)
		verify(CheckAuthEvents(ev, events, Options{Create: create}))
		key, _ := ev.StateKey()
		_ = AuthEventsNeeded(rules, ev.Type(), key, ev.Sender(), ev.Content())
		_ = UserMaySee(ev, state, Viewer{UserID: ev.Sender()})
		_ = ServerMaySee(ev, state, domainOf(ev.Sender()))
		_ = HistoryVisibility(ev)
	})
}

// vectorRoom builds a vector's state and event in one version.
func vectorRoom(tb testing.TB, vec *vector, rules roomversion.Rules) ([]*event.PDU, *event.PDU, bool) {
	r := newTestRoom(tb, rules)
	var ids []string
	for _, line := range vec.state {
		spec, err := parseLine(r, strings.TrimPrefix(line, "!"), ids)
		if err != nil {
			return nil, nil, false
		}
		ev, err := r.tryBuild(spec)
		if err != nil {
			return nil, nil, false
		}
		r.add(ev)
		ids = append(ids, ev.EventID())
	}
	spec, err := parseLine(r, vec.event, ids)
	if err != nil {
		return nil, nil, false
	}
	ev, err := r.tryBuild(spec)
	if err != nil {
		return nil, nil, false
	}
	return r.all, ev, true
}

// FuzzPowerLevelsContent checks that the power levels rules and package
// event's power levels view agree on which contents are readable: an event
// the rules accept must be readable from the state later, and a content the
// view reads is one the rules can compare.
func FuzzPowerLevelsContent(f *testing.F) {
	for _, s := range []string{
		`{"users":{"@a:x":100},"ban":"50","events":{"m.x":"+7"},"notifications":{"room":20}}`,
		`{"users":{"@a:x":50.9},"kick":1e3}`, `{"users":{"bad":1}}`, `{"notifications":"x"}`,
		`{"events":[]}`, `{"users_default":" 12 "}`, `{"invite":9007199254740993}`, `{"redact":1e400}`, `{"ban":9223372036854775807}`, `{"ban":"9223372036854775807"}`, `{"kick":-9007199254740992.5}`,
	} {
		for v := range 12 {
			f.Add(uint8(v), []byte(s))
		}
	}
	all := roomversion.All()
	f.Fuzz(func(t *testing.T, ver uint8, content []byte) {
		rules := all[int(ver)%len(all)]
		if !gjson.ValidBytes(content) || !gjson.ParseBytes(content).IsObject() {
			return
		}
		want, _, reason := parseLevelsContent(rules, content)
		view, err := event.ParsePowerLevels(rules, content)
		if (reason == "") != (err == nil) {
			t.Fatalf("room version %s: rules say %q, event says %v", rules.ID, reason, err)
		}
		if err != nil {
			return
		}
		// What the change rules compare must be the same whether read
		// from the content or from the view.
		got := levelsFromView(view)
		if got.scalars != want.scalars || !maps.Equal(got.users, want.users) ||
			!maps.Equal(got.maps[0], want.maps[0]) {
			t.Fatalf("room version %s: view gives %+v, content %+v", rules.ID, got, want)
		}
		for k, n := range want.maps[1] {
			if g, ok := got.level(1, k); !ok || g != n {
				t.Fatalf("notifications[%q]: view %d/%v, content %d", k, g, ok, n)
			}
		}
		for k := range got.maps[1] {
			if _, ok := got.level(1, k); ok {
				if _, ok := want.maps[1][k]; !ok {
					t.Fatalf("notifications[%q] is not in the content", k)
				}
			}
		}
	})
}

// FuzzEventAgainstRoom builds arbitrary events (type, sender, state key,
// content) in the realistic room and checks two properties: no panic, and
// the verdict against the room state equals the verdict against the auth
// events the selection algorithm picks from that state, rule for rule.
func FuzzEventAgainstRoom(f *testing.F) {
	versions := []roomversion.Rules{}
	for _, v := range roomversion.All() {
		if v.ID == "1" || v.ID == "8" || v.ID == roomversion.Default {
			versions = append(versions, v)
		}
	}
	rooms := make([]*testRoom, len(versions))
	for i, rules := range versions {
		r := newTestRoom(f, rules)
		for _, s := range realisticRoom(f, rules) {
			if s.want == nil {
				r.add(s.ev)
				h, _ := hashing.ReferenceHash(rules, s.ev.JSON())
				r.refs[s.ev.EventID()] = h
			}
		}
		rooms[i] = r
	}
	seeds := []struct{ typ, sender, key, content string }{
		{"m.room.message", "@user1:s1.test", "", `{"body":"x"}`},
		{"m.room.member", "@new:n.test", "@new:n.test", `{"membership":"join","join_authorised_via_users_server":"@alice:a.test"}`},
		{"m.room.member", "@alice:a.test", "@user2:s2.test", `{"membership":"ban"}`},
		{"m.room.member", "@mod:a.test", "@x:y.test", `{"membership":"invite","third_party_invite":{"signed":{"mxid":"@x:y.test","token":"t"}}}`},
		{"m.room.member", "@k:k.test", "@k:k.test", `{"membership":"knock"}`},
		{"m.room.power_levels", "@alice:a.test", "", `{"users":{"@mod:a.test":"60"},"ban":1}`},
		{"m.room.power_levels", "@mod:a.test", "", `{"users":{"@mod:a.test":50},"notifications":{"room":0}}`},
		{"m.room.join_rules", "@alice:a.test", "", `{"join_rule":"knock_restricted"}`},
		{"m.room.third_party_invite", "@user1:s1.test", "t", `{"public_key":"AAAA"}`},
		{"m.room.aliases", "@x:s0.test", "s0.test", `{"aliases":[]}`},
		{"m.room.redaction", "@user1:s1.test", "", `{"redacts":"$x"}`},
		{"m.room.create", "@alice:a.test", "", `{"creator":"@alice:a.test"}`},
	}
	for i := range rooms {
		for _, s := range seeds {
			f.Add(uint8(i), s.typ, s.sender, s.key, true, []byte(s.content))
		}
	}
	f.Fuzz(func(t *testing.T, room uint8, typ, sender, stateKey string, isState bool, content []byte) {
		r := rooms[int(room)%len(rooms)]
		if !gjson.ValidBytes(content) || !gjson.ParseBytes(content).IsObject() {
			return
		}
		spec := eventSpec{Type: typ, Sender: sender, Content: string(content)}
		if isState {
			spec.StateKey = &stateKey
		}
		if _, err := id.ParseUserID(sender); err != nil || domainOf(sender) == "" {
			return
		}
		ev, err := r.tryBuildQuiet(t, spec)
		if err != nil {
			return
		}
		rule1, err1 := CheckWithOptions(ev, r.state, Options{})
		rule2, err2 := CheckAuthEvents(ev, r.authEventsOf(ev), Options{Create: r.create})
		if ev.Type() == typeCreate {
			return // its own auth events are empty; against the state its prev_events decide
		}
		if rule1 != rule2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("state: %q %v; auth events: %q %v", rule1, err1, rule2, err2)
		}
	})
}

// FuzzTopLevel checks topLevel's shortcut (skip parsing when the key cannot
// occur) against a full parse: they must find the same value.
func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{`{"m.federate":false}`, `{"m\u002efederate":false}`, `{"a":{"m.federate":1}}`,
		`{"join_rule":"public","join_rule":"invite"}`, `{"k\"ey":1}`, `{}`, `[]`} {
		f.Add([]byte(s), "m.federate")
		f.Add([]byte(s), "join_rule")
	}
	f.Fuzz(func(t *testing.T, content []byte, key string) {
		if !gjson.ValidBytes(content) {
			return
		}
		var want gjson.Result
		gjson.ParseBytes(content).ForEach(func(k, v gjson.Result) bool {
			if k.Str == key {
				want = v
				return false
			}
			return true
		})
		got := topLevel(content, key)
		if got.Raw != want.Raw || got.Type != want.Type {
			t.Fatalf("topLevel(%q, %q) = %q, full parse %q", content, key, got.Raw, want.Raw)
		}
	})
}

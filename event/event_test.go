package event

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

const (
	v12Create = `{"auth_events":[],"content":{"room_version":"12"},"depth":1,"hashes":{"sha256":"ccqBumrNf46eCfIkdZSYW9RNafS0xFYYDm5rnZBSVJU"},"origin_server_ts":1000000,"prev_events":[],"sender":"@a:domain","signatures":{"domain":{"ed25519:1":"0iTJ32BZFymf41Y7UBttP2wZ0JTo6UjsLDQuf+79LB+WeKVfoLyR2I8RF23ZdFgCuxtjVBl5MKXIOWP+ocELDw"}},"state_key":"","type":"m.room.create"}`
	v12Join   = `{"auth_events":[],"content":{"membership":"join"},"depth":2,"hashes":{"sha256":"TcRcImZbXG5qc2WUTnU9xgCQyqqafSCLfFCb1WG80uU"},"origin_server_ts":1000001,"prev_events":["$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"],"room_id":"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"nCqEGEYAhRa0E3awGCYi+oLYGRofpBqY7MiaVvHkCmaZ4nsR51UUNYqThhV1IkaOXccoRStde9tj+XRwjMlkDg"}},"state_key":"@a:domain","type":"m.room.member"}`
)

func rules(t testing.TB, v string) roomversion.Rules {
	t.Helper()
	r, err := roomversion.Get(v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestParseSpecVectors(t *testing.T) {
	v12 := rules(t, "12")
	c, err := Parse(v12, []byte(v12Create))
	if err != nil {
		t.Fatal(err)
	}
	if c.EventID() != "$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM" || c.RoomID() != "!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM" || c.Type() != "m.room.create" || c.Depth() != 1 {
		t.Fatalf("create: %s %s %s %d", c.EventID(), c.RoomID(), c.Type(), c.Depth())
	}
	cc, err := c.CreateContent()
	if err != nil || cc.Creator != "@a:domain" || cc.RoomVersion != "12" || !cc.Federate {
		t.Fatalf("create content %+v %v", cc, err)
	}
	j, err := Parse(v12, []byte(v12Join))
	if err != nil {
		t.Fatal(err)
	}
	sk, isState := j.StateKey()
	if j.EventID() != "$6SmfXRmPKZktUiSQl9V_6azWFIFoRunj3pNs6rxiw-g" || j.Membership() != "join" || sk != "@a:domain" || !isState ||
		j.OriginServerTS() != 1000001 || len(j.PrevEventIDs()) != 1 || len(j.AuthEventIDs()) != 0 || j.Sender() != "@a:domain" {
		t.Fatalf("join: %+v", j)
	}
	if _, err := j.CreateContent(); !errors.Is(err, ErrNotApplicable) {
		t.Fatalf("CreateContent on a member event: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	v12 := rules(t, "12")
	v10 := rules(t, "10")
	v1 := rules(t, "1")
	msg10 := `{"auth_events":["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"],"content":{"body":"hi"},"depth":5,"hashes":{"sha256":"x"},"origin_server_ts":1,"prev_events":[],"room_id":"!r:example.org","sender":"@a:example.org","signatures":{},"type":"m.room.message"}`
	if _, err := Parse(v10, []byte(msg10)); err != nil {
		t.Fatalf("base event rejected: %v", err)
	}
	big := strings.Replace(msg10, `"hi"`, `"`+strings.Repeat("x", MaxSize)+`"`, 1)
	tests := []struct {
		name  string
		rules roomversion.Rules
		ev    string
		want  error
	}{
		{"too large", v10, big, ErrTooLarge},
		{"duplicate key", v10, strings.Replace(msg10, `"depth":5`, `"depth":5,"depth":6`, 1), canonicaljson.ErrDuplicateKey},
		{"float in v10", v10, strings.Replace(msg10, `"depth":5`, `"depth":5.0`, 1), canonicaljson.ErrFloat},
		{"float in content v10", v10, strings.Replace(msg10, `"hi"`, `1.5`, 1), canonicaljson.ErrFloat},
		{"big int in v10", v10, strings.Replace(msg10, `"hi"`, `9007199254740992`, 1), canonicaljson.ErrNumberRange},
		{"not json", v10, `{"a":`, ErrBadJSON},
		{"array", v10, `[]`, ErrBadJSON},
		{"no type", v10, strings.Replace(msg10, `"type":"m.room.message"`, `"x":1`, 1), ErrMissingField},
		{"type not string", v10, strings.Replace(msg10, `"type":"m.room.message"`, `"type":1`, 1), ErrBadField},
		{"bad sender", v10, strings.Replace(msg10, `"@a:example.org"`, `"a:example.org"`, 1), ErrBadField},
		{"no content", v10, strings.Replace(msg10, `"content":{"body":"hi"},`, ``, 1), ErrMissingField},
		{"content not object", v10, strings.Replace(msg10, `{"body":"hi"}`, `[]`, 1), ErrBadField},
		{"negative depth", v10, strings.Replace(msg10, `"depth":5`, `"depth":-1`, 1), ErrBadField},
		{"depth too big v10", v10, strings.Replace(msg10, `"depth":5`, `"depth":9007199254740992`, 1), canonicaljson.ErrNumberRange},
		{"depth string", v10, strings.Replace(msg10, `"depth":5`, `"depth":"5"`, 1), ErrBadField},
		{"no hashes", v10, strings.Replace(msg10, `"hashes":{"sha256":"x"},`, ``, 1), ErrMissingField},
		{"no signatures", v10, strings.Replace(msg10, `,"signatures":{}`, ``, 1), ErrMissingField},
		{"prev not list", v10, strings.Replace(msg10, `"prev_events":[]`, `"prev_events":{}`, 1), ErrBadField},
		{"auth with hash pairs in v10", v10, strings.Replace(msg10, `["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"]`, `[["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",{}]]`, 1), ErrBadField},
		{"v3 event ID format in v10", v10, strings.Replace(msg10, `$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg`, `$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk`, 1), ErrBadField},
		{"duplicate auth event", v10, strings.Replace(msg10, `["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"]`, `["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg","$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"]`, 1), ErrBadField},
		{"too many auth events", v10, strings.Replace(msg10, `"auth_events":["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"]`, `"auth_events":[`+manyIDs(11)+`]`, 1), ErrBadField},
		{"long state key", v10, strings.Replace(msg10, `"type"`, `"state_key":"`+strings.Repeat("k", 256)+`","type"`, 1), ErrBadField},
		{"v12 room ID in v10", v10, strings.Replace(msg10, `"!r:example.org"`, `"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"`, 1), ErrBadField},
		{"server room ID in v12", v12, strings.Replace(v12Join, `"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"`, `"!r:domain"`, 1), ErrBadField},
		{"v12 create with room_id", v12, strings.Replace(v12Create, `"sender"`, `"room_id":"!r:domain","sender"`, 1), ErrBadField},
		{"v1 without event_id", v1, strings.Replace(msg10, `["$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"]`, `[]`, 1), ErrMissingField},
		{"redaction without redacts v10", v10, strings.Replace(msg10, `m.room.message`, `m.room.redaction`, 1), ErrMissingField},
	}
	for _, tc := range tests {
		_, err := Parse(tc.rules, []byte(tc.ev))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Room version 5 is lenient about numbers (but depth must be an integer).
	v5 := rules(t, "5")
	if _, err := Parse(v5, []byte(strings.Replace(msg10, `"hi"`, `1.5`, 1))); err != nil {
		t.Errorf("float content in v5: %v", err)
	}
	if _, err := Parse(v5, []byte(strings.Replace(msg10, `"depth":5`, `"depth":9007199254740993`, 1))); err != nil {
		t.Errorf("depth over 2^53 in v5: %v", err)
	}
}

func manyIDs(n int) string {
	var ids []string
	for i := 0; i < n; i++ {
		h := fmt.Sprintf("%043d", i)
		ids = append(ids, `"$`+h[:42]+`A"`)
	}
	return strings.Join(ids, ",")
}

func TestBuildEveryVersion(t *testing.T) {
	key, err := signing.ParseKey("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roomversion.All() {
		t.Run(r.ID, func(t *testing.T) {
			refs := map[string][]byte{}
			build := func(b Builder) *PDU {
				t.Helper()
				b.ReferenceHashes = refs
				p, err := b.Build(r, "example.org", key.KeyID(), key.PrivateKey())
				if err != nil {
					t.Fatalf("%s: %v", b.Type, err)
				}
				h, err := hashing.ReferenceHash(r, p.JSON())
				if err != nil {
					t.Fatal(err)
				}
				refs[p.EventID()] = h
				if err := hashing.CheckContentHash(p.JSON()); err != nil {
					t.Fatalf("content hash: %v", err)
				}
				again, err := Parse(r, p.JSON())
				if err != nil || again.EventID() != p.EventID() {
					t.Fatalf("re-parse: %v", err)
				}
				return p
			}
			empty := ""
			alice := "@alice:example.org"
			create := build(Builder{RoomID: "!room:example.org", Type: "m.room.create", Sender: alice, StateKey: &empty,
				Content: []byte(fmt.Sprintf(`{"creator":%q,"room_version":%q}`, alice, r.ID)), Depth: 1})
			roomID := create.RoomID()
			if r.RoomIDFromCreateEvent != (roomID != "!room:example.org") {
				t.Fatalf("room ID %s", roomID)
			}
			var auth []string
			if r.CreateEventInAuthEvents {
				auth = []string{create.EventID()}
			}
			join := build(Builder{RoomID: roomID, Type: "m.room.member", Sender: alice, StateKey: &alice,
				Content: []byte(`{"membership":"join"}`), PrevEvents: []string{create.EventID()}, AuthEvents: auth, Depth: 2})
			if join.Membership() != "join" || join.RoomID() != roomID {
				t.Fatalf("join %s %s", join.Membership(), join.RoomID())
			}
			pl := build(Builder{RoomID: roomID, Type: "m.room.power_levels", Sender: alice, StateKey: &empty,
				Content: []byte(`{"users":{"@alice:example.org":100},"ban":70}`), PrevEvents: []string{join.EventID()}, AuthEvents: append(auth, join.EventID()), Depth: 3})
			levels, err := pl.PowerLevels()
			if err != nil || levels.UserLevel(alice) != 100 || levels.UserLevel("@bob:example.org") != 0 || levels.Ban != 70 || levels.Kick != 50 ||
				levels.EventLevel("m.room.name", true) != 50 || levels.EventLevel("m.room.message", false) != 0 {
				t.Fatalf("power levels %+v %v", levels, err)
			}
			msg := build(Builder{RoomID: roomID, Type: "m.room.message", Sender: alice, Content: []byte(`{"body":"hi"}`),
				PrevEvents: []string{pl.EventID()}, AuthEvents: append(auth, join.EventID(), pl.EventID()), Depth: 4, Unsigned: []byte(`{"age":1}`)})
			if string(msg.Unsigned()) != `{"age":1}` || msg.IsState() {
				t.Fatalf("message unsigned %s", msg.Unsigned())
			}
			red := build(Builder{RoomID: roomID, Type: "m.room.redaction", Sender: alice, Redacts: msg.EventID(),
				PrevEvents: []string{msg.EventID()}, AuthEvents: append(auth, join.EventID(), pl.EventID()), Depth: 5})
			if red.Redacts() != msg.EventID() {
				t.Fatalf("redacts %q", red.Redacts())
			}
		})
	}
}

func TestPowerLevelStrings(t *testing.T) {
	content := []byte(`{"ban":"60","users":{"@a:b.c":" 75 "},"events":{"m.room.name":1.9}}`)
	for _, r := range roomversion.All() {
		pl, err := ParsePowerLevels(r, content)
		switch {
		case r.IntegerPowerLevels || r.StrictCanonicalJSON:
			if !errors.Is(err, ErrBadContent) {
				t.Errorf("v%s: %v", r.ID, err)
			}
		default:
			if err != nil || pl.Ban != 60 || pl.UserLevel("@a:b.c") != 75 || pl.EventLevel("m.room.name", true) != 1 {
				t.Errorf("v%s: %+v %v", r.ID, pl, err)
			}
		}
	}
	// Strings are accepted until IntegerPowerLevels even with strict JSON.
	for _, r := range roomversion.All() {
		pl, err := ParsePowerLevels(r, []byte(`{"kick":"20"}`))
		if r.IntegerPowerLevels != (err != nil) || (err == nil && pl.Kick != 20) {
			t.Errorf("v%s string level: %v", r.ID, err)
		}
	}
	if _, err := ParsePowerLevels(rules(t, "1"), []byte(`{"users":{"notauser":5}}`)); !errors.Is(err, ErrBadContent) {
		t.Errorf("bad user key: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(v12Create), uint8(11))
	f.Add([]byte(v12Join), uint8(11))
	f.Add([]byte(`{"type":"m.room.member","content":{"membership":5}}`), uint8(0))
	all := roomversion.All()
	f.Fuzz(func(t *testing.T, raw []byte, v uint8) {
		r := all[int(v)%len(all)]
		buf := slices.Clone(raw)
		p, err := Parse(r, buf)
		if err != nil {
			return
		}
		// The event keeps its own copy: reusing the input changes nothing.
		clear(buf)
		if string(p.JSON()) != string(raw) {
			t.Fatalf("JSON changed with the caller's buffer")
		}
		again, err := Parse(r, p.JSON())
		if err != nil || again.EventID() != p.EventID() || again.RoomID() != p.RoomID() {
			t.Fatalf("re-parse differs: %v", err)
		}
		// Views never panic.
		p.CreateContent()
		p.MemberContent()
		p.PowerLevels()
		p.JoinRules()
		p.ThirdPartyInvite()
		p.HistoryVisibility()
	})
}

// TestParseOwnsItsCopy: the event does not share memory with the caller's
// input, and its fields stay what they were when the input is reused.
func TestParseOwnsItsCopy(t *testing.T) {
	v12 := rules(t, "12")
	buf := []byte(v12Join)
	p, err := Parse(v12, buf)
	if err != nil {
		t.Fatal(err)
	}
	id, typ, content := p.EventID(), p.Type(), string(p.Content())
	for i := range buf {
		buf[i] = 'x'
	}
	if string(p.JSON()) != v12Join || p.EventID() != id || p.Type() != "m.room.member" || typ != "m.room.member" ||
		string(p.Content()) != `{"membership":"join"}` || content != string(p.Content()) || p.Sender() != "@a:domain" {
		t.Fatalf("event changed with its input: %s %s %s", p.JSON(), p.Type(), p.Content())
	}
	if cap(p.JSON()) != len(p.JSON()) || cap(p.Content()) != len(p.Content()) {
		t.Fatal("an append to JSON or Content would write into the event")
	}
	// The computed ID is the reference hash of the input, for every
	// format of computed IDs.
	for _, v := range []string{"4", "11", "12"} {
		raw := v12Join
		if v != "12" {
			raw = strings.Replace(v12Join, `"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"`, `"!r:domain"`, 1)
		}
		p, err := Parse(rules(t, v), []byte(raw))
		if err != nil {
			t.Fatalf("v%s: %v", v, err)
		}
		want, err := hashing.EventID(rules(t, v), []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if p.EventID() != want || len(p.EventID()) != computedIDLen(rules(t, v)) {
			t.Errorf("v%s: event ID %q, want %q", v, p.EventID(), want)
		}
	}
}

// TestAuthEventsAnyCount: auth_events lists up to MaxAuthEvents long come
// back whole and in order, whether or not they fit the inline buffer.
func TestAuthEventsAnyCount(t *testing.T) {
	v10 := rules(t, "10")
	for n := 0; n <= MaxAuthEvents; n++ {
		want := []string{}
		for i := range n {
			want = append(want, fmt.Sprintf("$%042dA", i))
		}
		list := ""
		if n > 0 {
			list = `"` + strings.Join(want, `","`) + `"`
		}
		raw := `{"auth_events":[` + list + `],"content":{"body":"hi"},"depth":5,"hashes":{"sha256":"x"},"origin_server_ts":1,"prev_events":[],"room_id":"!r:example.org","sender":"@a:example.org","signatures":{},"type":"m.room.message"}`
		p, err := Parse(v10, []byte(raw))
		if err != nil {
			t.Fatalf("%d auth events: %v", n, err)
		}
		if !slices.Equal(p.AuthEventIDs(), want) || p.AuthEventIDs() == nil {
			t.Errorf("%d auth events: got %q", n, p.AuthEventIDs())
		}
	}
}

// TestRulesShared: events parsed with a table room version share its
// rules; RulesRef and Rules agree.
func TestRulesShared(t *testing.T) {
	v12 := rules(t, "12")
	a, err := Parse(v12, []byte(v12Create))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(v12, []byte(v12Join))
	if err != nil {
		t.Fatal(err)
	}
	if a.RulesRef() != b.RulesRef() || a.RulesRef().ID != "12" || a.Rules().ID != "12" || a.Rules().PrivilegedCreators != v12.PrivilegedCreators {
		t.Fatalf("rules not shared or wrong: %p %p %s", a.RulesRef(), b.RulesRef(), a.Rules().ID)
	}
	custom := v12
	custom.PrivilegedCreators = false
	c, err := Parse(custom, []byte(v12Join))
	if err != nil {
		t.Fatal(err)
	}
	if c.RulesRef() == a.RulesRef() || c.Rules().PrivilegedCreators {
		t.Fatal("changed rules share the table's copy")
	}
}

func BenchmarkParse(b *testing.B) {
	r := rules(b, "12")
	raw := []byte(v12Join)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(r, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPowerLevelsExplicit(t *testing.T) {
	r := rules(t, "11")
	pl, err := ParsePowerLevels(r, []byte(`{"ban":50,"invite":0,"users_default":3,"notifications":{"room":50}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := ExplicitLevels{Ban: true, Invite: true, UsersDefault: true, NotificationsRoom: true}
	if pl.Explicit != want {
		t.Fatalf("explicit %+v, want %+v", pl.Explicit, want)
	}
	// Defaults are filled in but not marked as set by the content.
	pl, err = ParsePowerLevels(r, []byte(`{"kick":1,"notifications":{"other":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (ExplicitLevels{Kick: true}); pl.Explicit != want {
		t.Fatalf("explicit %+v, want %+v", pl.Explicit, want)
	}
	if pl.Ban != 50 || pl.Notifications["room"] != 50 || pl.Notifications["other"] != 2 {
		t.Fatalf("defaults not filled in: %+v", pl)
	}
}

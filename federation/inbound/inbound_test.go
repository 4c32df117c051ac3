package inbound

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/tidwall/sjson"
)

func TestParseTransaction(t *testing.T) {
	t.Parallel()
	pdus := func(n int) string { return "[" + strings.TrimSuffix(strings.Repeat(`{},`, n), ",") + "]" }
	edus := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(`{"edu_type":"m.typing","content":{}},`, n), ",") + "]"
	}
	tests := []struct {
		name, body string
		want       error
	}{
		{"ok", `{"origin":"a.example","origin_server_ts":5,"pdus":` + pdus(50) + `,"edus":` + edus(100) + `}`, nil},
		{"no edus", `{"origin":"a.example","origin_server_ts":5,"pdus":[]}`, nil},
		{"not json", `{"origin":`, ErrBadTransaction},
		{"not object", `[1]`, ErrBadTransaction},
		{"no origin", `{"origin_server_ts":5,"pdus":[]}`, ErrBadTransaction},
		{"origin number", `{"origin":1,"origin_server_ts":5,"pdus":[]}`, ErrBadTransaction},
		{"ts float", `{"origin":"a","origin_server_ts":5.5,"pdus":[]}`, ErrBadTransaction},
		{"ts string", `{"origin":"a","origin_server_ts":"5","pdus":[]}`, ErrBadTransaction},
		{"no pdus", `{"origin":"a","origin_server_ts":5}`, ErrBadTransaction},
		{"pdus object", `{"origin":"a","origin_server_ts":5,"pdus":{}}`, ErrBadTransaction},
		{"edus object", `{"origin":"a","origin_server_ts":5,"pdus":[],"edus":{}}`, ErrBadTransaction},
		{"duplicate pdus", `{"origin":"a","origin_server_ts":5,"pdus":[],"pdus":[{}]}`, ErrBadTransaction},
		{"51 pdus", `{"origin":"a","origin_server_ts":5,"pdus":` + pdus(51) + `}`, ErrTooManyPDUs},
		{"10000 pdus", `{"origin":"a","origin_server_ts":5,"pdus":` + pdus(10000) + `}`, ErrTooManyPDUs},
		{"101 edus", `{"origin":"a","origin_server_ts":5,"pdus":[],"edus":` + edus(101) + `}`, ErrTooManyEDUs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			txn, err := ParseTransaction([]byte(tc.body))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if txn.Origin == "" || txn.OriginServerTS != 5 {
					t.Fatalf("%+v", txn)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	txn, err := ParseTransaction([]byte(`{"origin":"a","origin_server_ts":5,"pdus":[{"x":1}],"edus":[{"edu_type":"m.typing","content":{"a":1}},{"edu_type":5,"content":{}},{"edu_type":"x"},7]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(txn.PDUs) != 1 || string(txn.PDUs[0]) != `{"x":1}` || len(txn.EDUs) != 1 || txn.EDUs[0].Type != "m.typing" || string(txn.EDUs[0].Content) != `{"a":1}` || txn.BadEDUs != 3 {
		t.Fatalf("%+v", txn)
	}
}

func TestRoomIDOf(t *testing.T) {
	t.Parallel()
	if id, err := RoomIDOf([]byte(`{"room_id":"!a:b"}`)); err != nil || id != "!a:b" {
		t.Fatal(id, err)
	}
	for _, bad := range []string{`{`, `{"room_id":1}`, `{}`, `{"room_id":""}`, `{"room_id":"` + strings.Repeat("a", 300) + `"}`} {
		if _, err := RoomIDOf([]byte(bad)); !errors.Is(err, ErrBadTransaction) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestServerAllowed(t *testing.T) {
	t.Parallel()
	acl := `{"allow":["*.example","good.org","ok?.net"],"deny":["bad.example","*.evil.example"],"allow_ip_literals":false}`
	tests := []struct {
		content, server string
		want            bool
	}{
		{"", "anything", true},
		{acl, "a.example", true},
		{acl, "A.EXAMPLE:8448", true},
		{acl, "bad.example", false},
		{acl, "bad.example:443", false},
		{acl, "x.evil.example", false},
		{acl, "good.org", true},
		{acl, "notgood.org", false},
		{acl, "ok1.net", true},
		{acl, "ok12.net", false},
		{acl, "1.2.3.4", false},
		{acl, "[::1]:8448", false},
		{`{"allow":["*"]}`, "1.2.3.4:8448", true},
		{`{"allow":["*"],"allow_ip_literals":"no"}`, "1.2.3.4", true},
		{`{"deny":["*"]}`, "a.example", false},
		{`{}`, "a.example", false},
		{`{"allow":[1,"a.example"]}`, "a.example", true},
		{`[]`, "a.example", false},
		{`{"allow":["*a*a*a*a*a*a*b"]}`, strings.Repeat("a", 200), false},
	}
	for _, tc := range tests {
		var c []byte
		if tc.content != "" {
			c = []byte(tc.content)
		}
		if got := ServerAllowed(c, tc.server); got != tc.want {
			t.Errorf("%s %s: %v, want %v", tc.content, tc.server, got, tc.want)
		}
	}
}

// kitRoom is a Room over a test kit room: the state before an event is
// the state after its first prev event; the current state is the main
// branch's.
type kitRoom struct {
	r        *roomtest.Room
	rejected map[string]bool
	hide     map[string]bool
	fail     error
}

func (k *kitRoom) Events(ctx context.Context, ids []string) ([]*event.PDU, error) {
	if k.fail != nil {
		return nil, k.fail
	}
	out, err := k.r.Events(ctx, ids)
	for i, id := range ids {
		if k.hide[id] {
			out[i] = nil
		}
	}
	return out, err
}

func (k *kitRoom) StateBefore(_ context.Context, ev *event.PDU) (eventauth.State, error) {
	if len(ev.PrevEventIDs()) == 0 {
		return nil, errors.New("no prev events")
	}
	return k.r.StateAfter(ev.PrevEventIDs()[0]), nil
}

func (k *kitRoom) CurrentState(context.Context) (eventauth.State, error) { return k.r.State(), nil }

func (k *kitRoom) Rejected(id string) bool { return k.rejected[id] }

var versions = []string{"1", "3", "10", "11", "12"}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, v := range versions {
		t.Run("v"+v, func(t *testing.T) {
			t.Parallel()
			build := must[*event.PDU](t)
			r := roomtest.New(t, roomtest.Options{Version: v, Creator: "@alice:a.test"})
			bob := "@bob:b.test"
			r.Join(bob)
			bobJoin := r.State().Member(bob).EventID()
			beforeBan := r.Fork()
			room := &kitRoom{r: r, rejected: map[string]bool{}, hide: map[string]bool{}}
			c := &Checker{Keys: r}
			ctx := context.Background()
			msg := func(sender, body string) roomtest.Event {
				return roomtest.Event{Type: "m.room.message", Sender: sender, Content: map[string]string{"body": body}}
			}

			good := build(r.Build(msg(bob, "hi")))
			res := c.Check(ctx, r.Rules, room, good.JSON())
			if res.Outcome != Accepted || res.Err != nil || res.Redacted || res.EventID != good.EventID() {
				t.Fatalf("good event: %v %v", res.Outcome, res.Err)
			}

			// Step 1: format.
			bad, _ := sjson.DeleteBytes(good.JSON(), "depth")
			if res := c.Check(ctx, r.Rules, room, bad); res.Outcome != Dropped || !errors.Is(res.Err, ErrFormat) || !errors.Is(res.Err, event.ErrMissingField) {
				t.Fatalf("no depth: %v %v", res.Outcome, res.Err)
			}
			tooLarge := r.Forge(roomtest.TooLarge, msg(bob, "x"))
			if res := c.Check(ctx, r.Rules, room, tooLarge.JSON); res.Outcome != Dropped || !errors.Is(res.Err, event.ErrTooLarge) {
				t.Fatalf("too large: %v %v", res.Outcome, res.Err)
			}
			// Step 2: a corrupted signature, a signature by another
			// server, a sender of another server than the signer.
			for _, f := range []roomtest.Forgery{roomtest.BadSignature, roomtest.WrongServerSignature, roomtest.ForeignSender} {
				forged := r.Forge(f, msg(bob, "forged"))
				if res := c.Check(ctx, r.Rules, room, forged.JSON); res.Outcome != Dropped || !errors.Is(res.Err, ErrSignature) {
					t.Fatalf("%v: %v %v", f, res.Outcome, res.Err)
				}
			}
			// Step 3: content hash mismatch: kept, redacted.
			wrongHash := r.Forge(roomtest.WrongContentHash, msg(bob, "changed"))
			res = c.Check(ctx, r.Rules, room, wrongHash.JSON)
			if res.Outcome != Accepted || !res.Redacted || string(res.Event.Content()) != `{}` {
				t.Fatalf("hash mismatch: %v redacted=%v %v", res.Outcome, res.Redacted, res.Err)
			}
			// Step 4: a user who never joined; auth events of another room.
			eve := build(r.Build(roomtest.Event{Type: "m.room.message", Sender: "@eve:b.test", Unchecked: true}))
			if res := c.Check(ctx, r.Rules, room, eve.JSON()); res.Outcome != Rejected || !errors.Is(res.Err, ErrAuthEvents) || !errors.Is(res.Err, eventauth.ErrNotJoined) {
				t.Fatalf("not joined: %v %v", res.Outcome, res.Err)
			}

			r.Ban(r.Creator(), bob)
			// Step 5: auth events from before the ban, prev event after it.
			var oldAuth []string
			for _, a := range good.AuthEventIDs() {
				oldAuth = append(oldAuth, a)
			}
			late := build(r.Build(roomtest.Event{Type: "m.room.message", Sender: bob, AuthEvents: oldAuth, Unchecked: true}))
			if res := c.Check(ctx, r.Rules, room, late.JSON()); res.Outcome != Rejected || !errors.Is(res.Err, ErrStateBefore) || !errors.Is(res.Err, eventauth.ErrNotJoined) {
				t.Fatalf("banned before: %v %v", res.Outcome, res.Err)
			}
			// Step 6: on a branch from before the ban: soft-failed.
			branch := beforeBan.Message(bob, "old branch")
			if res := c.Check(ctx, r.Rules, room, branch.JSON()); res.Outcome != SoftFailed || !errors.Is(res.Err, ErrCurrentState) || !errors.Is(res.Err, eventauth.ErrNotJoined) {
				t.Fatalf("soft fail: %v %v", res.Outcome, res.Err)
			}
			// A rejected auth event rejects.
			room.rejected[bobJoin] = true
			if res := c.Check(ctx, r.Rules, room, branch.JSON()); res.Outcome != Rejected || !errors.Is(res.Err, ErrAuthEvents) || !errors.Is(res.Err, eventauth.ErrAuthEvents) {
				t.Fatalf("rejected auth event: %v %v", res.Outcome, res.Err)
			}
			delete(room.rejected, bobJoin)
			// Unknown auth events: undecided, with their IDs.
			room.hide[bobJoin] = true
			res = c.Check(ctx, r.Rules, room, branch.JSON())
			if res.Outcome != Undecided || !errors.Is(res.Err, ErrMissingAuthEvents) || len(res.Missing) != 1 || res.Missing[0] != bobJoin {
				t.Fatalf("missing auth event: %v %v %v", res.Outcome, res.Err, res.Missing)
			}
			// A failing room: undecided.
			room.fail = errors.New("db down")
			if res := c.Check(ctx, r.Rules, room, good.JSON()); res.Outcome != Undecided || !errors.Is(res.Err, ErrRoom) {
				t.Fatalf("room failure: %v %v", res.Outcome, res.Err)
			}
		})
	}
}

// TestVerifyBatch: results keep their index; dropped and redacted events
// mix with good ones.
func TestVerifyBatch(t *testing.T) {
	t.Parallel()
	r := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:a.test"})
	c := &Checker{Keys: r}
	var raws [][]byte
	var want []Outcome
	for i := range 20 {
		e := roomtest.Event{Type: "m.room.message", Sender: r.Creator(), Content: map[string]int{"n": i}}
		w := Accepted
		var raw []byte
		switch i % 4 {
		case 0:
			raw = r.Add(e).JSON()
		case 1:
			raw, w = []byte(`{"type":`), Dropped
		case 2:
			raw, w = r.Forge(roomtest.BadSignature, e).JSON, Dropped
		case 3:
			raw = r.Forge(roomtest.WrongContentHash, e).JSON
		}
		raws = append(raws, raw)
		want = append(want, w)
	}
	res := c.Verify(context.Background(), r.Rules, raws)
	for i, x := range res {
		if x.Outcome != want[i] || (i%4 == 3) != x.Redacted {
			t.Errorf("%d: %v redacted=%v %v", i, x.Outcome, x.Redacted, x.Err)
		}
	}
}

func TestCheckOrigin(t *testing.T) {
	t.Parallel()
	r := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:a.test"})
	e := r.Last()
	if err := CheckOrigin(e, "a.test", r.ID); err != nil {
		t.Fatal(err)
	}
	if err := CheckOrigin(e, "b.test", r.ID); !errors.Is(err, ErrSenderNotOrigin) {
		t.Fatal(err)
	}
	if err := CheckOrigin(e, "a.test", "!other:a.test"); !errors.Is(err, ErrWrongRoom) {
		t.Fatal(err)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, s := range map[Outcome]string{Accepted: "accepted", Dropped: "dropped", Rejected: "rejected", SoftFailed: "soft-failed", Undecided: "undecided", 9: "Outcome(9)"} {
		if o.String() != s {
			t.Errorf("%d: %s", o, o)
		}
	}
}

func TestResponse(t *testing.T) {
	t.Parallel()
	got := Response([]Result{
		{EventID: "$a", Outcome: Accepted},
		{EventID: "$b", Outcome: SoftFailed, Err: ErrCurrentState},
		{EventID: "$c", Outcome: Rejected, Err: ErrAuthEvents},
		{EventID: "$d", Outcome: Undecided},
		{Outcome: Dropped, Err: ErrFormat},
	})
	if len(got) != 4 || len(got["$a"]) != 0 || len(got["$b"]) != 0 || got["$c"]["error"] != ErrAuthEvents.Error() || got["$d"]["error"] != "undecided" {
		t.Fatalf("%v", got)
	}
}

func BenchmarkCheck(b *testing.B) {
	r := roomtest.New(b, roomtest.Options{Version: "10", Creator: "@alice:a.test"})
	ev, err := r.Build(roomtest.Event{Type: "m.room.message", Sender: r.Creator(), Content: `{"body":"` + strings.Repeat("x", 800) + `"}`})
	if err != nil {
		b.Fatal(err)
	}
	room := &kitRoom{r: r}
	c := &Checker{Keys: r}
	b.ReportAllocs()
	b.SetBytes(int64(len(ev.JSON())))
	for b.Loop() {
		if res := c.Check(context.Background(), r.Rules, room, ev.JSON()); res.Outcome != Accepted {
			b.Fatal(res.Err)
		}
	}
}

func TestCheckEDUOrigin(t *testing.T) {
	t.Parallel()
	ok := []EDU{
		{"m.typing", []byte(`{"room_id":"!r:x","user_id":"@a:o.example","typing":true}`)},
		{"m.receipt", []byte(`{"!r:x":{"m.read":{"@a:o.example":{"event_ids":["$e"],"data":{"ts":1}},"@b:o.example":{}}}}`)},
		{"m.presence", []byte(`{"push":[{"user_id":"@a:o.example","presence":"online"}]}`)},
		{"m.direct_to_device", []byte(`{"sender":"@a:o.example","type":"x","message_id":"1","messages":{}}`)},
		{"m.device_list_update", []byte(`{"user_id":"@a:o.example","device_id":"D","stream_id":1}`)},
		{"m.unknown", []byte(`{"user_id":"@a:elsewhere"}`)},
	}
	for _, e := range ok {
		if err := CheckEDUOrigin(e, "o.example"); err != nil {
			t.Errorf("%s: %v", e.Type, err)
		}
	}
	bad := []EDU{
		{"m.typing", []byte(`{"room_id":"!r:x","user_id":"@a:other.example","typing":true}`)},
		{"m.typing", []byte(`{"user_id":5}`)},
		{"m.receipt", []byte(`{"!r:x":{"m.read":{"@a:o.example":{},"@b:other.example":{}}}}`)},
		{"m.presence", []byte(`{"push":[{"user_id":"@a:o.example"},{"user_id":"@b:other.example"}]}`)},
		{"m.direct_to_device", []byte(`{"sender":"@a:other.example"}`)},
		{"m.signing_key_update", []byte(`{}`)},
	}
	for _, e := range bad {
		if err := CheckEDUOrigin(e, "o.example"); !errors.Is(err, ErrEDUOrigin) {
			t.Errorf("%s %s: %v", e.Type, e.Content, err)
		}
	}
}

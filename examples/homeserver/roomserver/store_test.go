package roomserver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// testRoom drives checkAndStore directly (no logs): it builds events the
// way the client API does, from the entries of the current state their
// auth needs.
type testRoom struct {
	t      *testing.T
	rs     *RoomServer
	rules  roomversion.Rules
	key    *signing.Key
	roomID string
}

const testServer = "rs.test"

func newTestRoom(t *testing.T) *testRoom {
	d := openTestDB(t)
	key, err := signing.GenerateKey("ed25519:t")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := New(d, nil, testServer, key, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		t.Fatal(err)
	}
	r := &testRoom{t: t, rs: rs, rules: rules, key: key}
	empty := ""
	content := []byte(`{"room_version":"` + rules.ID + `"}`)
	if !rules.CreatorFromSender {
		content = []byte(`{"room_version":"` + rules.ID + `","creator":"@alice:rs.test"}`)
	}
	b := event.Builder{Type: "m.room.create", Sender: "@alice:rs.test", StateKey: &empty, Content: content, Depth: 1}
	if !rules.RoomIDFromCreateEvent {
		b.RoomID = "!room:rs.test"
	}
	ev, err := b.Build(rules, testServer, key.KeyID(), key.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.checkAndStore(context.Background(), rules, ev, nil, false, nil); err != nil {
		t.Fatal(err)
	}
	r.roomID = ev.RoomID()
	r.state("m.room.member", "@alice:rs.test", "@alice:rs.test", `{"membership":"join"}`)
	pl := `{"users":{"@alice:rs.test":100},"state_default":50,"events_default":0}`
	if rules.PrivilegedCreators {
		pl = `{"users":{},"state_default":50,"events_default":0}`
	}
	r.state("m.room.power_levels", "@alice:rs.test", "", pl)
	r.state("m.room.join_rules", "@alice:rs.test", "", `{"join_rule":"public"}`)
	return r
}

func (r *testRoom) build(evType, sender string, stateKey *string, content string) *event.PDU {
	r.t.Helper()
	state, err := r.rs.CurrentStateFor(r.roomID, StateKeysFor(r.rules, evType, sender, stateKey, []byte(content)))
	if err != nil {
		r.t.Fatal(err)
	}
	prev, depth, err := r.rs.LatestEvents(r.roomID)
	if err != nil {
		r.t.Fatal(err)
	}
	sk := ""
	if stateKey != nil {
		sk = *stateKey
	}
	var auth []string
	for _, k := range eventauth.AuthEventsNeeded(r.rules, evType, sk, sender, []byte(content)) {
		if p := state[k]; p != nil {
			auth = append(auth, p.EventID())
		}
	}
	b := event.Builder{RoomID: r.roomID, Type: evType, Sender: sender, StateKey: stateKey, Content: []byte(content),
		PrevEvents: prev, AuthEvents: auth, Depth: depth + 1}
	ev, err := b.Build(r.rules, testServer, r.key.KeyID(), r.key.PrivateKey())
	if err != nil {
		r.t.Fatal(err)
	}
	return ev
}

func (r *testRoom) submit(ev *event.PDU) (*Output, error) {
	return r.rs.checkAndStore(context.Background(), r.rules, ev, nil, false, nil)
}

func (r *testRoom) state(evType, sender, stateKey, content string) (*event.PDU, *Output) {
	r.t.Helper()
	ev := r.build(evType, sender, &stateKey, content)
	out, err := r.submit(ev)
	if err != nil {
		r.t.Fatal(err)
	}
	return ev, out
}

func (r *testRoom) message(sender string) (*event.PDU, error) {
	ev := r.build("m.room.message", sender, nil, `{"msgtype":"m.text","body":"hi"}`)
	_, err := r.submit(ev)
	return ev, err
}

func (r *testRoom) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.rs.db.QueryRow(q, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *testRoom) snapshotOf(eventID string) int64 {
	r.t.Helper()
	_, snap, err := r.rs.eventSnapshot(eventID)
	if err != nil {
		r.t.Fatal(err)
	}
	return snap
}

// TestStoreSharesSnapshots checks what storing writes: messages share the
// snapshot before them and add no snapshot row; a state event adds one
// one-entry delta; the output carries the state delta; the state after
// each event is right; a rejected event stores nothing; and a store that
// fails after writing its snapshot leaves no snapshot behind (one
// transaction).
func TestStoreSharesSnapshots(t *testing.T) {
	r := newTestRoom(t)
	snaps := r.count(`SELECT COUNT(*) FROM rs_snapshots`)
	var last *event.PDU
	for i := 0; i < 3; i++ {
		ev, err := r.message("@alice:rs.test")
		if err != nil {
			t.Fatal(err)
		}
		if last != nil && r.snapshotOf(ev.EventID()) != r.snapshotOf(last.EventID()) {
			t.Fatal("a message did not share the previous message's snapshot")
		}
		last = ev
	}
	if n := r.count(`SELECT COUNT(*) FROM rs_snapshots`); n != snaps {
		t.Fatalf("messages wrote %d snapshot rows", n-snaps)
	}
	join, out := r.state("m.room.member", "@bob:rs.test", "@bob:rs.test", `{"membership":"join"}`)
	if n := r.count(`SELECT COUNT(*) FROM rs_snapshots`); n != snaps+1 {
		t.Fatalf("a join wrote %d snapshot rows", n-snaps)
	}
	var entries []byte
	var parent int64
	if err := r.rs.db.QueryRow(`SELECT parent, entries FROM rs_snapshots WHERE id = ?`, r.snapshotOf(join.EventID())).Scan(&parent, &entries); err != nil {
		t.Fatal(err)
	}
	if es, err := decodeEntries(entries); err != nil || len(es) != 1 || es[0].EventID != join.EventID() || parent != r.snapshotOf(last.EventID()) {
		t.Fatalf("join's snapshot: parent %d, entries %v %v", parent, es, err)
	}
	if len(out.AddsState) != 1 || out.AddsState[0] != join.EventID() || len(out.RemovesState) != 0 {
		t.Fatalf("join output: adds %v removes %v", out.AddsState, out.RemovesState)
	}
	rename, out := r.state("m.room.member", "@bob:rs.test", "@bob:rs.test", `{"membership":"join","displayname":"Bob"}`)
	if len(out.RemovesState) != 1 || out.RemovesState[0] != join.EventID() {
		t.Fatalf("profile change output removes %v, want the first join", out.RemovesState)
	}
	st, err := r.rs.StateAfterInRoom(r.roomID, rename.EventID())
	if err != nil || len(st) != 5 || st[eventauth.StateKey{Type: "m.room.member", StateKey: "@bob:rs.test"}] != rename.EventID() {
		t.Fatalf("state after the profile change: %v %v", st, err)
	}
	if st, err := r.rs.StateAfter(last.EventID()); err != nil || len(st) != 4 {
		t.Fatalf("state after the last message (before bob): %d entries, %v", len(st), err)
	}

	// Carol is not in the room: rejected, nothing stored.
	events := r.count(`SELECT COUNT(*) FROM rs_events`)
	if _, err := r.message("@carol:rs.test"); !errors.As(err, new(*RejectedError)) {
		t.Fatalf("message from a non-member: %v", err)
	}
	if r.count(`SELECT COUNT(*) FROM rs_events`) != events {
		t.Fatal("a rejected event was stored")
	}

	// Storing bob's join again fails on the event row after its snapshot
	// row was written: the transaction leaves neither.
	snaps = r.count(`SELECT COUNT(*) FROM rs_snapshots`)
	before := eventauth.StateMap{}
	if _, err := r.rs.store(context.Background(), r.rules, join, r.snapshotOf(rename.EventID()), before, false, nil); err == nil {
		t.Fatal("storing an event twice succeeded")
	}
	if n := r.count(`SELECT COUNT(*) FROM rs_snapshots`); n != snaps {
		t.Fatalf("a failed store left %d snapshot rows", n-snaps)
	}
}

// TestManyJoinsThroughTheBound joins members past several full snapshots
// and checks the state after joins on each side of a full snapshot, and
// that a message's auth reads stay by key (the current state table and
// the snapshot agree).
func TestManyJoinsThroughTheBound(t *testing.T) {
	r := newTestRoom(t)
	var joins []*event.PDU
	for i := 0; i < 2*maxHops+5; i++ {
		u := fmt.Sprintf("@u%d:rs.test", i)
		ev, _ := r.state("m.room.member", u, u, `{"membership":"join"}`)
		joins = append(joins, ev)
	}
	if full := r.count(`SELECT COUNT(*) FROM rs_snapshots WHERE parent = 0`); full < 3 {
		t.Fatalf("%d full snapshots", full)
	}
	for i, ev := range joins {
		st, err := r.rs.StateAfter(ev.EventID())
		if err != nil || len(st) != 4+i+1 {
			t.Fatalf("state after join %d: %d entries, %v", i, len(st), err)
		}
	}
	cur, err := r.rs.CurrentState(r.roomID)
	if err != nil {
		t.Fatal(err)
	}
	last, err := r.rs.StateAfter(joins[len(joins)-1].EventID())
	if err != nil || len(cur) != len(last) {
		t.Fatalf("current state %d entries, snapshot %d: %v", len(cur), len(last), err)
	}
	for k, p := range cur {
		if last[k] != p.EventID() {
			t.Fatalf("current state and snapshot differ at %v", k)
		}
	}
	if _, err := r.message("@u3:rs.test"); err != nil {
		t.Fatal(err)
	}
}

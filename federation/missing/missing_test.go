package missing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/stateres"
)

// fakeServer answers from a room's events. Behaviour switches make it
// hostile.
type fakeServer struct {
	room        *roomtest.Room
	ignoreLimit bool              // answer with every event
	extra       []json.RawMessage // added to every answer
	garbage     bool
	block       bool
	stateCalls  atomic.Int32
	eventCalls  atomic.Int32
	stateIDs    func(ids []string) []string // rewrites pdu_ids
}

type fakeClient map[string]*fakeServer

func (c fakeClient) server(dest string) (*fakeServer, error) {
	s := c[dest]
	if s == nil {
		return nil, fmt.Errorf("connection refused: %s", dest)
	}
	return s, nil
}

func (c fakeClient) GetMissingEvents(ctx context.Context, dest, roomID string, earliest, latest []string, limit int) (json.RawMessage, error) {
	s, err := c.server(dest)
	if err != nil {
		return nil, err
	}
	if s.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.garbage {
		return json.RawMessage(`{"events":{}}`), nil
	}
	// Breadth-first over prev_events from latest, not past earliest.
	var out []json.RawMessage
	seen := map[string]bool{}
	for _, e := range earliest {
		seen[e] = true
	}
	queue := slices.Clone(latest)
	for _, l := range latest {
		seen[l] = true
	}
	for len(queue) > 0 && (s.ignoreLimit || len(out) < limit) {
		id := queue[0]
		queue = queue[1:]
		ev := s.room.Event(id)
		if ev == nil {
			continue
		}
		for _, p := range ev.PrevEventIDs() {
			if pe := s.room.Event(p); !seen[p] && pe != nil {
				seen[p] = true
				out = append(out, pe.JSON())
				queue = append(queue, p)
			}
		}
	}
	if !s.ignoreLimit && len(out) > limit {
		out = out[:limit]
	}
	out = append(out, s.extra...)
	b, _ := json.Marshal(map[string]any{"events": out})
	return b, nil
}

func (c fakeClient) StateIDs(_ context.Context, dest, roomID, eventID string) (json.RawMessage, error) {
	s, err := c.server(dest)
	if err != nil {
		return nil, err
	}
	ev := s.room.Event(eventID)
	if ev == nil {
		return nil, errors.New("404")
	}
	st := s.room.StateBefore(eventID)
	var ids []string
	for _, e := range st {
		ids = append(ids, e.EventID())
	}
	slices.Sort(ids)
	if s.stateIDs != nil {
		ids = s.stateIDs(ids)
	}
	return json.Marshal(map[string]any{"pdu_ids": ids, "auth_chain_ids": []string{}})
}

func (c fakeClient) GetEvent(_ context.Context, dest, eventID string) (json.RawMessage, error) {
	s, err := c.server(dest)
	if err != nil {
		return nil, err
	}
	s.eventCalls.Add(1)
	if ev := s.room.Event(eventID); ev != nil {
		return ev.JSON(), nil
	}
	return nil, errors.New("404")
}

func (c fakeClient) State(_ context.Context, dest, roomID, eventID string) (json.RawMessage, error) {
	s, err := c.server(dest)
	if err != nil {
		return nil, err
	}
	s.stateCalls.Add(1)
	var pdus []json.RawMessage
	for _, e := range s.room.StateBefore(eventID) {
		pdus = append(pdus, e.JSON())
	}
	return json.Marshal(map[string]any{"pdus": pdus, "auth_chain": []any{}})
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// chainRoom has the kit's setup events and n messages, in order.
func chainRoom(t *testing.T, n int) (*roomtest.Room, []string) {
	r := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:a.test"})
	var order []string
	for _, ev := range r.All() {
		order = append(order, ev.EventID())
	}
	for i := range n {
		order = append(order, r.Message(r.Creator(), fmt.Sprint(i)).EventID())
	}
	return r, order
}

func knownFirst(order []string, n int) Known {
	have := map[string]bool{}
	for _, id := range order[:n] {
		have[id] = true
	}
	return func(_ context.Context, ids []string) ([]bool, error) {
		out := make([]bool, len(ids))
		for i, id := range ids {
			out[i] = have[id]
		}
		return out, nil
	}
}

func TestWalkFillsGap(t *testing.T) {
	t.Parallel()
	r, order := chainRoom(t, 30)
	last := r.Event(order[len(order)-1])
	c := fakeClient{"a.example": {room: r}}
	res, err := Walk(context.Background(), c, WalkRequest{Rules: r.Rules, Event: last, Earliest: []string{order[9]},
		Servers: []string{"down.example", "a.example"}, Known: knownFirst(order, 10), Limits: Limits{PerRequest: 7}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) != 0 || res.Server != "a.example" || res.Skipped != 0 {
		t.Fatalf("%+v", res)
	}
	var got []string
	for _, ev := range res.Events {
		got = append(got, ev.EventID())
	}
	if want := order[10 : len(order)-1]; !slices.Equal(got, want) {
		t.Fatalf("got %d events, want the %d between, oldest first", len(got), len(want))
	}
}

func TestWalkBounds(t *testing.T) {
	t.Parallel()
	r, order := chainRoom(t, 60)
	last := r.Event(order[len(order)-1])
	req := WalkRequest{Rules: r.Rules, Event: last, Earliest: []string{order[0]}, Servers: []string{"a.example"}, Known: knownFirst(order, 1)}

	// Rounds: 2 rounds of 5.
	c := fakeClient{"a.example": {room: r}}
	req.Limits = Limits{PerRequest: 5, MaxRounds: 2}
	res := must[*WalkResult](t)(Walk(context.Background(), c, req))
	if len(res.Events) != 10 || len(res.Missing) != 1 {
		t.Fatalf("rounds: %d events, missing %v", len(res.Events), res.Missing)
	}
	// Total events.
	req.Limits = Limits{PerRequest: 20, MaxEvents: 25}
	res = must[*WalkResult](t)(Walk(context.Background(), c, req))
	if len(res.Events) != 25 || len(res.Missing) != 1 {
		t.Fatalf("max events: %d events, missing %v", len(res.Events), res.Missing)
	}
	// A server ignoring the limit, adding events of another room and
	// garbage: the extras are skipped.
	other := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@carol:c.test"})
	hostile := &fakeServer{room: r, ignoreLimit: true, extra: []json.RawMessage{other.Last().JSON(), json.RawMessage(`{"type":1}`)}}
	c = fakeClient{"a.example": hostile}
	req.Limits = Limits{PerRequest: 10, MaxRounds: 1}
	res = must[*WalkResult](t)(Walk(context.Background(), c, req))
	if len(res.Events) != 10 || res.Skipped < 40 {
		t.Fatalf("hostile: %d events, %d skipped", len(res.Events), res.Skipped)
	}
	for _, ev := range res.Events {
		if ev.RoomID() != r.ID {
			t.Fatal("event of another room kept")
		}
	}
	// Garbage from the first server, a good second server.
	c = fakeClient{"bad.example": {room: r, garbage: true}, "a.example": {room: r}}
	req.Servers = []string{"bad.example", "a.example"}
	req.Limits = Limits{}
	res = must[*WalkResult](t)(Walk(context.Background(), c, req))
	if res.Server != "a.example" || len(res.Missing) != 0 {
		t.Fatalf("second server: %+v", res)
	}
	// No server answers.
	req.Servers = []string{"bad.example"}
	if _, err := Walk(context.Background(), c, req); !errors.Is(err, ErrNoServer) {
		t.Fatal(err)
	}
	// A server that never answers: the time limit ends the walk.
	c = fakeClient{"slow.example": {room: r, block: true}}
	req.Servers, req.Limits = []string{"slow.example"}, Limits{Timeout: 50 * time.Millisecond}
	start := time.Now()
	if _, err := Walk(context.Background(), c, req); !errors.Is(err, ErrNoServer) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	r, order := chainRoom(t, 3)
	for i := range 10 {
		r.Join(fmt.Sprintf("@u%d:a.test", i))
	}
	ev := r.Message(r.Creator(), "x")
	want := roomtest.StateIDs(r.StateBefore(ev.EventID()))
	haveSome := func(_ context.Context, ids []string) ([]*event.PDU, error) {
		out := make([]*event.PDU, len(ids))
		for i, id := range ids {
			if slices.Contains(order[:2], id) {
				out[i] = r.Event(id)
			}
		}
		return out, nil
	}
	srv := &fakeServer{room: r}
	c := fakeClient{"a.example": srv}
	req := FetchRequest{Rules: r.Rules, RoomID: r.ID, EventID: ev.EventID(), Server: "a.example", Have: haveSome}
	res := must[*FetchResult](t)(Fetch(context.Background(), c, req))
	if len(res.State) != len(want) || len(res.Fetched) != len(want)-2 || srv.eventCalls.Load() != int32(len(want)-2) || srv.stateCalls.Load() != 0 {
		t.Fatalf("%d entries, %d fetched, %d /event calls", len(res.State), len(res.Fetched), srv.eventCalls.Load())
	}
	for k, id := range want {
		if res.State[k] != id {
			t.Fatalf("entry %v", k)
		}
	}
	// Many missing: one /state instead.
	req.Limits = Limits{MaxFetches: 3}
	res = must[*FetchResult](t)(Fetch(context.Background(), c, req))
	if srv.stateCalls.Load() != 1 || len(res.State) != len(want) {
		t.Fatalf("/state calls %d, entries %d", srv.stateCalls.Load(), len(res.State))
	}
	// Too many IDs.
	req.Limits = Limits{MaxState: 5}
	if _, err := Fetch(context.Background(), c, req); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	// A listed event the server cannot give, a message in the state, an
	// ID that is not a string.
	req.Limits = Limits{}
	msg := order[len(order)-1]
	for name, rewrite := range map[string]func([]string) []string{
		"unknown": func(ids []string) []string { return append(ids, "$nope") },
		"message": func(ids []string) []string { return append(ids, msg) },
		"long":    func(ids []string) []string { return append(ids, strings.Repeat("x", 300)) },
	} {
		srv.stateIDs = rewrite
		if _, err := Fetch(context.Background(), c, req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStateBefore(t *testing.T) {
	t.Parallel()
	r := roomtest.New(t, roomtest.Options{Version: "10", Creator: "@alice:a.test"})
	base := r.StateIDs()
	fork := r.Fork()
	t1 := r.SetState(r.Creator(), "m.room.topic", "", map[string]string{"topic": "one"})
	t2 := fork.SetState(r.Creator(), "m.room.topic", "", map[string]string{"topic": "two"})
	a, b := StateAfter(base, t1), StateAfter(base, t2)
	if len(base) != len(a)-1 || a[eventauth.StateKey{Type: "m.room.topic"}] != t1.EventID() {
		t.Fatal("StateAfter")
	}
	if got := must[map[eventauth.StateKey]string](t)(StateBefore(context.Background(), r.Rules, []map[eventauth.StateKey]string{a}, r)); got[eventauth.StateKey{Type: "m.room.topic"}] != t1.EventID() {
		t.Fatal("one prev state")
	}
	got := must[map[eventauth.StateKey]string](t)(StateBefore(context.Background(), r.Rules, []map[eventauth.StateKey]string{a, b}, r))
	swapped := must[map[eventauth.StateKey]string](t)(StateBefore(context.Background(), r.Rules, []map[eventauth.StateKey]string{b, a}, r))
	want := must[map[eventauth.StateKey]string](t)(stateres.Resolve(context.Background(), r.Rules, []map[eventauth.StateKey]string{a, b}, r))
	topic := got[eventauth.StateKey{Type: "m.room.topic"}]
	if topic != want[eventauth.StateKey{Type: "m.room.topic"}] || swapped[eventauth.StateKey{Type: "m.room.topic"}] != topic || len(got) != len(base)+1 {
		t.Fatalf("resolved topic %s", topic)
	}
	if _, err := StateBefore(context.Background(), r.Rules, nil, r); !errors.Is(err, ErrBadResponse) {
		t.Fatal(err)
	}
}

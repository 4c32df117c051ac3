package roomserver

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
)

func openTestDB(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Exec(schema); err != nil {
		t.Fatal(err)
	}
	return d
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// write stores changes on parent in a transaction of its own.
func write(t *testing.T, d *db.DB, roomID string, parent int64, changes []stateEntry, added int) int64 {
	t.Helper()
	tx, err := d.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	id, err := writeSnapshot(tx, roomID, parent, changes, added)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

func asMap(es []stateEntry) map[eventauth.StateKey]string {
	m := map[eventauth.StateKey]string{}
	for _, e := range es {
		m[eventauth.StateKey{Type: e.Type, StateKey: e.StateKey}] = e.EventID
	}
	return m
}

// TestSnapshotChain writes 300 state changes (new members and replaced
// ones) through the chain bound several times and checks, for every
// snapshot, the full state and single-key lookups against a plain map, and
// that no chain is longer than the bound.
func TestSnapshotChain(t *testing.T) {
	d := openTestDB(t)
	const room = "!r:x"
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[eventauth.StateKey]string{{Type: "m.room.create"}: "$create"}
	snap := write(t, d, room, 0, []stateEntry{{"m.room.create", "", "$create"}}, 1)
	type saved struct {
		snap  int64
		state map[eventauth.StateKey]string
	}
	history := []saved{{snap, maps.Clone(model)}}
	fulls := 0
	for i := 0; i < 300; i++ {
		k := eventauth.StateKey{Type: "m.room.member", StateKey: fmt.Sprintf("@u%d:x", rng.IntN(120))}
		if i%7 == 0 {
			k = eventauth.StateKey{Type: "m.room.topic"}
		}
		added := 1
		if _, ok := model[k]; ok {
			added = 0
		}
		id := fmt.Sprintf("$e%d", i)
		model[k] = id
		snap = write(t, d, room, snap, []stateEntry{{k.Type, k.StateKey, id}}, added)
		history = append(history, saved{snap, maps.Clone(model)})
		var hops int
		if err := d.QueryRow(`SELECT hops FROM rs_snapshots WHERE id = ?`, snap).Scan(&hops); err != nil {
			t.Fatal(err)
		}
		if hops >= maxHops {
			t.Fatalf("snapshot %d has %d hops, bound %d", snap, hops, maxHops)
		}
		if hops == 0 {
			fulls++
		}
	}
	if fulls < 4 {
		t.Fatalf("%d full snapshots in 300 changes with a bound of %d", fulls, maxHops)
	}
	for _, h := range history {
		got, err := loadSnapshot(d, room, h.snap)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(asMap(got), h.state) {
			t.Fatalf("snapshot %d: state differs from the model", h.snap)
		}
		keys := []eventauth.StateKey{{Type: "m.room.topic"}, {Type: "m.room.member", StateKey: "@u7:x"}, {Type: "m.room.name"}}
		one, err := lookupSnapshot(d, room, h.snap, keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if want, ok := h.state[k]; one[k] != want || (ok != (one[k] != "")) {
				t.Fatalf("snapshot %d key %v: %q, want %q", h.snap, k, one[k], want)
			}
		}
	}
}

// TestSnapshotBroken checks that damaged chains give ErrBrokenState and
// never a state: a missing parent, a parent of another room, a cycle,
// unreadable entries and a wrong recorded size.
func TestSnapshotBroken(t *testing.T) {
	cases := []struct {
		name   string
		damage func(d *db.DB, full, mid, leaf int64) error
	}{
		{"missing parent", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`DELETE FROM rs_snapshots WHERE id = ?`, mid)
			return err
		}},
		{"missing full snapshot", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`DELETE FROM rs_snapshots WHERE id = ?`, full)
			return err
		}},
		{"parent in another room", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`UPDATE rs_snapshots SET room_id = '!other:x' WHERE id = ?`, mid)
			return err
		}},
		{"cycle", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`UPDATE rs_snapshots SET parent = ?, hops = 5 WHERE id = ?`, leaf, full)
			return err
		}},
		{"unreadable entries", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`UPDATE rs_snapshots SET entries = ? WHERE id = ?`, []byte{1, 9, 0}, full)
			return err
		}},
		{"wrong size", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`UPDATE rs_snapshots SET size = size + 1 WHERE id = ?`, leaf)
			return err
		}},
		{"hops out of step", func(d *db.DB, full, mid, leaf int64) error {
			_, err := d.Exec(`UPDATE rs_snapshots SET hops = 7 WHERE id = ?`, mid)
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := openTestDB(t)
			const room = "!r:x"
			full := write(t, d, room, 0, []stateEntry{{"m.room.create", "", "$c"}, {"m.room.member", "@a:x", "$j"}}, 2)
			mid := write(t, d, room, full, []stateEntry{{"m.room.topic", "", "$t"}}, 1)
			leaf := write(t, d, room, mid, []stateEntry{{"m.room.member", "@b:x", "$b"}}, 1)
			if _, err := loadSnapshot(d, room, leaf); err != nil {
				t.Fatal(err)
			}
			if err := c.damage(d, full, mid, leaf); err != nil {
				t.Fatal(err)
			}
			st, err := loadSnapshot(d, room, leaf)
			if !errors.Is(err, ErrBrokenState) || st != nil {
				t.Fatalf("load: %v, %d entries; want ErrBrokenState", err, len(st))
			}
			// A lookup that has to reach the damage fails too.
			_, err = lookupSnapshot(d, room, leaf, []eventauth.StateKey{{Type: "m.room.create"}})
			if c.name != "wrong size" && !errors.Is(err, ErrBrokenState) {
				t.Fatalf("lookup: %v; want ErrBrokenState", err)
			}
		})
	}
}

// TestStateQueryErrors checks the query API on an unknown event, an event
// of another room and an event whose snapshot row is gone.
func TestStateQueryErrors(t *testing.T) {
	d := openTestDB(t)
	rs, err := New(d, nil, "x", nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s1 := write(t, d, "!a:x", 0, []stateEntry{{"m.room.create", "", "$ca"}}, 1)
	s2 := write(t, d, "!b:x", 0, []stateEntry{{"m.room.create", "", "$cb"}}, 1)
	for _, r := range []struct {
		id, room string
		snap     int64
	}{{"$ca", "!a:x", s1}, {"$cb", "!b:x", s2}, {"$gone", "!a:x", 999}} {
		if _, err := d.Exec(`INSERT INTO rs_events (event_id, room_id, json, snapshot) VALUES (?, ?, '{}', ?)`, r.id, r.room, r.snap); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := rs.StateAfterInRoom("!a:x", "$ca"); err != nil || st[eventauth.StateKey{Type: "m.room.create"}] != "$ca" || len(st) != 1 {
		t.Fatalf("state after $ca: %v %v", st, err)
	}
	if _, err := rs.StateAfter("$nope"); !errors.Is(err, ErrUnknownEvent) {
		t.Fatalf("unknown event: %v", err)
	}
	if _, err := rs.StateAfterInRoom("!a:x", "$cb"); !errors.Is(err, ErrEventNotInRoom) {
		t.Fatalf("event of another room: %v", err)
	}
	if _, _, err := rs.StateEntryAfter("!a:x", "$cb", eventauth.StateKey{Type: "m.room.create"}); !errors.Is(err, ErrEventNotInRoom) {
		t.Fatalf("entry of an event of another room: %v", err)
	}
	if _, err := rs.StateAfter("$gone"); !errors.Is(err, ErrBrokenState) {
		t.Fatalf("missing snapshot: %v", err)
	}
	// A snapshot ID pointing at another room's snapshot is a broken chain.
	if _, err := d.Exec(`UPDATE rs_events SET snapshot = ? WHERE event_id = '$gone'`, s2); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.StateAfter("$gone"); !errors.Is(err, ErrBrokenState) {
		t.Fatalf("snapshot of another room: %v", err)
	}
}

func TestEntriesRoundTrip(t *testing.T) {
	es := []stateEntry{{"m.room.create", "", "$a"}, {"m.room.member", "@a:x", "$b"}, {"m.room.member", "@b:x", "$c"}}
	got, err := decodeEntries(encodeEntries(es))
	if err != nil || len(got) != 3 || got[1] != es[1] {
		t.Fatalf("%v %v", got, err)
	}
	if e, err := decodeEntries(encodeEntries(nil)); err != nil || len(e) != 0 {
		t.Fatalf("empty: %v %v", e, err)
	}
	bad := encodeEntries([]stateEntry{es[1], es[0]})
	if _, err := decodeEntries(bad); err == nil {
		t.Fatal("out-of-order entries accepted")
	}
	if _, err := decodeEntries(append(encodeEntries(es), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzDecodeEntries(f *testing.F) {
	f.Add(encodeEntries([]stateEntry{{"m.room.create", "", "$a"}, {"m.room.member", "@a:x", "$b"}}))
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeEntries(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if again := encodeEntries(es); string(again) != string(b) {
			t.Fatalf("re-encoding differs: %x vs %x", again, b)
		}
	})
}

// TestMigrateOldData migrates the database of a data folder written by the
// state_after schema (internal/server/testdata/olddata.tar.gz, made by
// TestMakeOldFixture) and checks that the state after every event, read
// from snapshots, equals the state_after JSON the old code stored.
func TestMigrateOldData(t *testing.T) {
	dir := t.TempDir()
	extractDB(t, filepath.Join("..", "internal", "server", "testdata", "olddata.tar.gz"), dir)
	d, err := db.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	old := map[string]map[eventauth.StateKey]string{}
	rows, err := d.Query(`SELECT event_id, state_after FROM rs_events`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			t.Fatal(err)
		}
		var es []stateEntry
		if err := json.Unmarshal([]byte(raw), &es); err != nil {
			t.Fatal(err)
		}
		old[id] = asMap(es)
	}
	rows.Close()
	if len(old) < 20 {
		t.Fatalf("fixture has %d events", len(old))
	}
	rs, err := New(d, nil, "old.test", nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	var distinct int
	if err := d.QueryRow(`SELECT COUNT(*) FROM rs_snapshots`).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	for id, want := range old {
		got, err := rs.StateAfter(id)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("state after %s: %d entries, want the old %d", id, len(got), len(want))
		}
	}
	// Messages share snapshots: one per state event, not one per event.
	var stateEvents int
	if err := d.QueryRow(`SELECT COUNT(*) FROM rs_events WHERE json LIKE '%"state_key"%'`).Scan(&stateEvents); err != nil {
		t.Fatal(err)
	}
	if distinct != stateEvents || distinct >= len(old) {
		t.Fatalf("%d snapshots for %d events of which %d state events", distinct, len(old), stateEvents)
	}
	// Starting again on the migrated database is a no-op.
	if _, err := New(d, nil, "old.test", nil, quietLog()); err != nil {
		t.Fatal(err)
	}
}

func extractDB(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no homeserver.db in the fixture: %v", err)
		}
		if hdr.Name != "homeserver.db" {
			continue
		}
		out, err := os.Create(filepath.Join(dst, "homeserver.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, io.LimitReader(tr, 64<<20)); err != nil {
			t.Fatal(err)
		}
		out.Close()
		return
	}
}

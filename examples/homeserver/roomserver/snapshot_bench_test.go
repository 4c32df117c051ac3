package roomserver

import (
	"fmt"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
)

// benchRoom stores a room of n members as a full snapshot followed by the
// longest delta chain the bound allows (each delta one member's change),
// with realistic lengths for user and event IDs, and returns the newest
// snapshot.
func benchRoom(b *testing.B, n int) (*RoomServer, int64) {
	d := openTestDB(&testing.T{})
	b.Cleanup(func() { d.Close() })
	const room = "!bench:scale.test"
	eid := func(i int) string { return fmt.Sprintf("$%043d", i) }
	full := []stateEntry{{"m.room.create", "", eid(0)}, {"m.room.join_rules", "", eid(1)}, {"m.room.power_levels", "", eid(2)}}
	for i := 0; i < n; i++ {
		full = append(full, stateEntry{"m.room.member", fmt.Sprintf("@member%d:scale.test", i), eid(10 + i)})
	}
	tx, err := d.Begin()
	if err != nil {
		b.Fatal(err)
	}
	snap, err := writeSnapshot(tx, room, 0, full, len(full))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < maxHops-1; i++ {
		if snap, err = writeSnapshot(tx, room, snap, []stateEntry{{"m.room.member", fmt.Sprintf("@member%d:scale.test", i*7), eid(n + 100 + i)}}, 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Exec(`INSERT INTO rs_events (event_id, room_id, json, snapshot) VALUES ('$at', ?, '{}', ?)`, room, snap); err != nil {
		b.Fatal(err)
	}
	rs, err := New(d, nil, "scale.test", nil, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	return rs, snap
}

// BenchmarkStateAfter loads the state after an event whose snapshot is at
// the end of the longest chain, as the map the query API returns.
func BenchmarkStateAfter(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rs, _ := benchRoom(b, n)
			b.ResetTimer()
			for b.Loop() {
				st, err := rs.StateAfter("$at")
				if err != nil || len(st) != n+3 {
					b.Fatalf("%d entries, %v", len(st), err)
				}
			}
		})
	}
}

// BenchmarkStateEntryAfter looks up one member in the same snapshot.
func BenchmarkStateEntryAfter(b *testing.B) {
	rs, _ := benchRoom(b, 10000)
	k := eventauth.StateKey{Type: "m.room.member", StateKey: "@member4242:scale.test"}
	b.ResetTimer()
	for b.Loop() {
		if _, ok, err := rs.StateEntryAfter("!bench:scale.test", "$at", k); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

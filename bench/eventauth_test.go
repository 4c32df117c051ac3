//go:build !goexperiment.jsonv2

package bench

import (
	"testing"

	gmsl "github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// benchOursEventAuth checks 1000 accepted events of the room file of the
// version against their own auth events with this library.
func benchOursEventAuth(b *testing.B, version string, lines []authRoomLine, include []bool) {
	rules, err := roomversion.Get(version)
	if err != nil {
		b.Fatal(err)
	}
	type item struct {
		ev   *event.PDU
		auth []*event.PDU
	}
	byID := map[string]*event.PDU{}
	var ok []item
	var create *event.PDU
	for i, l := range lines {
		ev, err := event.Parse(rules, l.PDU)
		if err != nil {
			b.Fatal(err)
		}
		byID[ev.EventID()] = ev
		if create == nil {
			create = ev
		}
		if !include[i] {
			continue
		}
		var auth []*event.PDU
		for _, id := range ev.AuthEventIDs() {
			auth = append(auth, byID[id])
		}
		ok = append(ok, item{ev, auth})
	}
	items := make([]item, authBenchEvents)
	for i := range items {
		items[i] = ok[i%len(ok)]
	}
	opts := eventauth.Options{Create: create}
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range items {
			if _, err := eventauth.CheckAuthEvents(it.ev, it.auth, opts); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkEventAuthV10 checks 1000 accepted events of a realistic room
// version 10 room (eventauth/testdata/room-v10.jsonl: joins, invites,
// knocks, restricted joins, bans, power level changes, redactions, chatter)
// against their own auth events, events parsed beforehand by each library;
// one op is 1000 events. gomatrixserverlib knows no room version 12.
func BenchmarkEventAuthV10(b *testing.B) {
	lines := loadAuthRoom(b, "10")
	include := make([]bool, len(lines))
	for i, l := range lines {
		include[i] = l.Allowed
	}
	b.Run("ours", func(b *testing.B) { benchOursEventAuth(b, "10", lines, include) })
	b.Run("gmsl", func(b *testing.B) {
		verImpl := gmsl.MustGetRoomVersion(gmsl.RoomVersionV10)
		querier := func(_ spec.RoomID, senderID spec.SenderID) (*spec.UserID, error) {
			return spec.NewUserID(string(senderID), true)
		}
		type item struct {
			ev   gmsl.PDU
			auth []gmsl.PDU
		}
		byID := map[string]gmsl.PDU{}
		var ok []item
		disagree := 0
		for _, l := range lines {
			ev, err := verImpl.NewEventFromTrustedJSON(l.PDU, false)
			if err != nil {
				b.Fatal(err)
			}
			byID[ev.EventID()] = ev
			var auth []gmsl.PDU
			for _, id := range ev.AuthEventIDs() {
				auth = append(auth, byID[id])
			}
			ae := gmsl.NewAuthEvents(auth)
			allowed := gmsl.Allowed(ev, &ae, querier) == nil
			if allowed != l.Allowed {
				disagree++
				ae2 := gmsl.NewAuthEvents(auth)
				b.Logf("disagree: recorded allowed=%v, gomatrixserverlib says %v: %.200s", l.Allowed, gmsl.Allowed(ev, &ae2, querier), l.PDU)
			}
			if l.Allowed && allowed {
				ok = append(ok, item{ev, auth})
			}
		}
		if disagree > 0 {
			b.Logf("gomatrixserverlib disagrees with the recorded verdict on %d of %d events", disagree, len(lines))
		}
		items := make([]item, authBenchEvents)
		for i := range items {
			items[i] = ok[i%len(ok)]
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, it := range items {
				ae := gmsl.NewAuthEvents(it.auth)
				if err := gmsl.Allowed(it.ev, &ae, querier); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkEventAuthV12 is BenchmarkEventAuthV10 on the room version 12
// room file, without restricted joins, kicks and bans (see authBenchSet); mautrix-go runs
// it in the jsonv2 binary. (mautrix-go v0.26.0's room version 10 check of
// the creator's first join reads content.creator from the join event
// instead of the create event, so it rejects the whole v10 room.)
func BenchmarkEventAuthV12(b *testing.B) {
	lines := loadAuthRoom(b, "12")
	b.Run("ours", func(b *testing.B) { benchOursEventAuth(b, "12", lines, authBenchSet(b, "12", lines)) })
}

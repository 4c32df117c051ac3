//go:build goexperiment.jsonv2

package bench

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json/v2"
	"testing"
	"time"

	"maunium.net/go/mautrix/federation/eventauth"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// BenchmarkEventAuthV12/mautrix: the same 1000 events as
// BenchmarkEventAuthV12/ours in eventauth_test.go, checked with mautrix-go's
// eventauth.Authorize (which also verifies the authorising server's
// signature of restricted joins).
func BenchmarkEventAuthV12(b *testing.B) {
	lines := loadAuthRoom(b, "12")
	b.Run("mautrix", func(b *testing.B) {
		ver := id.RoomVersion("12")
		byID := map[id.EventID]*pdu.PDU{}
		getEvents := func(ids []id.EventID) ([]*pdu.PDU, error) {
			out := make([]*pdu.PDU, len(ids))
			for i, x := range ids {
				out[i] = byID[x]
			}
			return out, nil
		}
		// The eventauth test rooms sign with a key derived from the server
		// name (eventauth's testKey); restricted joins need the
		// authorising server's key.
		getKey := func(server string, _ id.KeyID, _ time.Time) (id.SigningKey, time.Time, error) {
			seed := sha256.Sum256([]byte("eventauth test key " + server))
			pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
			return id.SigningKey(base64.RawStdEncoding.EncodeToString(pub)), time.Now().Add(time.Hour), nil
		}
		include := authBenchSet(b, "12", lines)
		var ok []*pdu.PDU
		disagree := 0
		for i, l := range lines {
			var ev pdu.PDU
			if err := json.Unmarshal(l.PDU, &ev); err != nil {
				b.Fatal(err)
			}
			evID, err := ev.GetEventID(ver)
			if err != nil {
				b.Fatal(err)
			}
			ev.InternalMeta.EventID = evID
			err = eventauth.Authorize(ver, &ev, getEvents, getKey)
			if (err == nil) != l.Allowed && (include[i] || !l.Allowed) {
				disagree++
				b.Logf("disagree: recorded %v, mautrix %v: %.300s", l.Allowed, err, l.PDU)
			}
			if err != nil {
				ev.InternalMeta.Rejected = true
			}
			byID[evID] = &ev
			if include[i] {
				if err != nil {
					b.Fatalf("mautrix rejects an event of the common set: %v", err)
				}
				ok = append(ok, &ev)
			}
		}
		if disagree > 0 {
			b.Logf("mautrix-go disagrees with the recorded verdict on %d of %d events outside restricted joins, kicks and bans", disagree, len(lines))
		}
		items := make([]*pdu.PDU, authBenchEvents)
		for i := range items {
			items[i] = ok[i%len(ok)]
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, ev := range items {
				if err := eventauth.Authorize(ver, ev, getEvents, getKey); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

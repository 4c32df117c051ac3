package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// authRoomLine is one line of eventauth/testdata/room-v*.jsonl.
type authRoomLine struct {
	PDU     json.RawMessage `json:"pdu"`
	Allowed bool            `json:"allowed"`
}

// loadAuthRoom reads a realistic room file of the eventauth package: every
// event's JSON and whether it is accepted.
func loadAuthRoom(tb testing.TB, version string) []authRoomLine {
	b, err := os.ReadFile("../eventauth/testdata/room-v" + version + ".jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	var out []authRoomLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l authRoomLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

const authBenchEvents = 1000

// authBenchSet marks the lines every compared library should accept: the
// recorded accepted events, minus restricted joins (events carrying
// join_authorised_via_users_server), kicks and bans, and every event
// citing one of those, directly or not. mautrix-go v0.26.0 rejects them:
// its auth events selection looks for the authorising user under the key
// "authorised_via_users_server", and its kick and ban rules require the
// sender's membership to be "leave" where the spec requires "join".
func authBenchSet(tb testing.TB, version string, lines []authRoomLine) []bool {
	rules, err := roomversion.Get(version)
	if err != nil {
		tb.Fatal(err)
	}
	excluded := map[string]bool{}
	out := make([]bool, len(lines))
	for i, l := range lines {
		ev, err := event.Parse(rules, l.PDU)
		if err != nil {
			tb.Fatal(err)
		}
		target, _ := ev.StateKey()
		kickOrBan := (ev.Membership() == "ban" || ev.Membership() == "leave") && target != ev.Sender()
		bad := gjson.GetBytes(ev.Content(), "join_authorised_via_users_server").Exists() || kickOrBan
		for _, id := range ev.AuthEventIDs() {
			bad = bad || excluded[id]
		}
		if bad {
			excluded[ev.EventID()] = true
		}
		out[i] = l.Allowed && !bad
	}
	return out
}

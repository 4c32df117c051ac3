package eventauth

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

var update = flag.Bool("update", false, "rewrite testdata/room-v*.jsonl from the realistic room scenario")

// roomFileVersions are the room versions whose realistic room is kept as a
// file (for the benchmarks here and in the bench module, which compare with
// libraries that parse the same JSON).
func roomFileVersions() []roomversion.Rules {
	var out []roomversion.Rules
	for _, r := range roomversion.All() {
		// Version 10 (string-free power levels, every membership feature
		// but v11/v12 changes) and the default version.
		if r.IntegerPowerLevels && !r.CreatorFromSender || r.ID == roomversion.Default {
			out = append(out, r)
		}
	}
	return out
}

// roomLine is one line of a room file: an event and its expected verdict.
type roomLine struct {
	PDU     json.RawMessage `json:"pdu"`
	Allowed bool            `json:"allowed"`
	Family  string          `json:"family,omitempty"`
}

func familyName(err error) string {
	for _, name := range []string{"create", "roomid", "authevents", "federate", "aliases", "membership",
		"authorisedvia", "join", "invite", "thirdpartyinvite", "leave", "ban", "knock", "notjoined", "tpilevel",
		"powerlevel", "statekey", "powerlevels", "redaction"} {
		if s, _ := familySentinel(name); errors.Is(err, s) {
			return name
		}
	}
	return ""
}

func roomFileName(rules roomversion.Rules) string {
	return fmt.Sprintf("testdata/room-v%s.jsonl", rules.ID)
}

// TestRoomFiles replays the realistic rooms kept in testdata: every line's
// verdict (and rejection family) is asserted, against the event's auth
// events and against the room state at that point.
func TestRoomFiles(t *testing.T) {
	for _, rules := range roomFileVersions() {
		name := roomFileName(rules)
		if *update {
			var buf bytes.Buffer
			for _, s := range realisticRoom(t, rules) {
				line, err := json.Marshal(roomLine{PDU: s.ev.JSON(), Allowed: s.want == nil, Family: familyName(s.want)})
				if err != nil {
					t.Fatal(err)
				}
				buf.Write(line)
				buf.WriteByte('\n')
			}
			if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		lines, err := loadRoomFile(rules, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(lines) < 300 {
			t.Fatalf("%s: only %d events", name, len(lines))
		}
		state := StateMap{}
		byID := map[string]*event.PDU{}
		var create *event.PDU
		for i, l := range lines {
			var auth []*event.PDU
			for _, id := range l.ev.AuthEventIDs() {
				if ae := byID[id]; ae != nil {
					auth = append(auth, ae)
				}
			}
			_, err1 := CheckAuthEvents(l.ev, auth, Options{Create: create})
			err2 := Check(l.ev, state)
			for _, err := range []error{err1, err2} {
				if l.allowed && err != nil {
					t.Fatalf("%s line %d: want allowed, got %v", name, i+1, err)
				}
				if !l.allowed && familyName(err) != l.family {
					t.Fatalf("%s line %d: want a %s rejection, got %v", name, i+1, l.family, err)
				}
			}
			byID[l.ev.EventID()] = l.ev
			if l.allowed {
				state.Add(l.ev)
				if l.ev.Type() == typeCreate {
					create = l.ev
				}
			}
		}
	}
}

type loadedLine struct {
	ev      *event.PDU
	allowed bool
	family  string
}

func loadRoomFile(rules roomversion.Rules, name string) ([]loadedLine, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []loadedLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l roomLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		ev, err := event.Parse(rules, l.PDU)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if !l.Allowed {
			if _, ok := familySentinel(l.Family); !ok {
				return nil, fmt.Errorf("line %d: unknown family %q", n, l.Family)
			}
		}
		out = append(out, loadedLine{ev: ev, allowed: l.Allowed, family: l.Family})
	}
	return out, sc.Err()
}

package stateres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// decodeToyRoom turns fuzz bytes into a toy room. Auth edges may point
// forward (cycles) or past the last event (missing events).
func decodeToyRoom(data []byte) ([]toyEvent, []map[stateKey]string, map[string]map[string]int64, bool) {
	users := []string{"@u0", "@u1", "@u2"}
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	n := int(next()%24) + 1
	levels := map[string]map[string]int64{}
	evs := make([]toyEvent, n)
	for i := range evs {
		b := next()
		ev := toyEvent{id: fmt.Sprintf("$e%02d", i), sender: users[int(b>>4)%len(users)], ts: int64(next() % 8), power: int64(next()%3) * 50}
		switch b % 5 {
		case 0:
			ev.typ = typePowerLevels
			levels[ev.id] = map[string]int64{users[0]: 100, users[int(b>>2)%3]: int64(b%3) * 50}
		case 1:
			ev.typ = typeJoinRules
		case 2, 3:
			ev.typ = typeMember
			ev.sk = users[int(b>>6)%len(users)]
			ev.membership = []string{"join", "leave", "ban"}[int(b>>3)%3]
		default:
			ev.typ = "m.room.topic"
		}
		for range next() % 4 {
			ev.auth = append(ev.auth, fmt.Sprintf("$e%02d", next()%32))
		}
		evs[i] = ev
	}
	sets := make([]map[stateKey]string, int(next()%3)+1)
	for i := range sets {
		sets[i] = map[stateKey]string{}
	}
	for _, ev := range evs {
		for i := range sets {
			if next()%3 > 0 {
				sets[i][stateKey{Type: ev.typ, StateKey: ev.sk}] = ev.id
			}
		}
	}
	// Well-formed: every auth edge points to an earlier event.
	ok := true
	for i, ev := range evs {
		for _, a := range ev.auth {
			var j int
			if _, err := fmt.Sscanf(a, "$e%d", &j); err != nil || j >= i {
				ok = false
			}
		}
	}
	return evs, sets, levels, ok
}

// FuzzEngine runs every algorithm on arbitrary auth graphs: no panics, only
// the documented errors, and on well-formed graphs the result of the
// direct transcription of the spec.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{5, 0, 1, 2, 0, 3, 1, 0, 1, 2, 1, 0, 2, 1, 2, 1, 1, 2, 0, 1, 2, 1, 2})
	f.Add([]byte{3, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 1, 0, 1, 2, 2, 2})
	f.Add([]byte("\x10\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18"))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, sets, levels, wellFormed := decodeToyRoom(data)
		byID := map[string]toyEvent{}
		for _, ev := range evs {
			byID[ev.id] = ev
		}
		rule := randomRule(levels)
		engineRule := func(v *authView) bool {
			g := v.e.g
			return rule(byID[g.info[v.ev].id], func(typ, sk string) (toyEvent, bool) {
				i := v.get(context.Background(), typ, sk)
				if i < 0 {
					return toyEvent{}, false
				}
				return byID[g.info[i].id], true
			})
		}
		for _, alg := range []roomversion.StateResAlgorithm{roomversion.StateResV1, roomversion.StateResV2, roomversion.StateResV2_1} {
			e := toyEngine(t, evs, engineRule)
			e.rules.StateResolution = alg
			var got map[stateKey]string
			var err error
			if alg == roomversion.StateResV1 {
				got, err = e.resolveV1(context.Background(), sets)
			} else {
				got, err = e.resolveV2(context.Background(), sets, nil)
			}
			if err != nil {
				if !errors.Is(err, ErrAuthCycle) && !errors.Is(err, ErrMissingEvent) {
					t.Fatalf("%v: unexpected error %v", alg, err)
				}
				if wellFormed {
					t.Fatalf("%v: error on a well-formed graph: %v", alg, err)
				}
				continue
			}
			if wellFormed && alg != roomversion.StateResV1 {
				if want := naiveResolve(byID, sets, alg == roomversion.StateResV2_1, rule); !maps.Equal(got, want) {
					t.Fatalf("%v: got %v, want %v", alg, got, want)
				}
			}
		}
	})
}

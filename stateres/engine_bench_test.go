package stateres

import (
	"context"
	"fmt"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// toyForked is the benchmark shape with fake rules: two branches writing the
// same keys, every tenth event a power levels change.
func toyForked(n int) ([]toyEvent, []map[stateKey]string) {
	evs := []toyEvent{
		{id: "$create", typ: typeCreate, sender: "@alice"},
		{id: "$aj", typ: typeMember, sk: "@alice", sender: "@alice", membership: "join", auth: []string{"$create"}},
		{id: "$pl0", typ: typePowerLevels, sender: "@alice", auth: []string{"$create", "$aj"}},
	}
	base := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@alice"}: "$aj", {Type: typePowerLevels, StateKey: ""}: "$pl0"}
	for i := range 10 {
		u := fmt.Sprintf("@m%d", i)
		id := "$join-" + u
		evs = append(evs, toyEvent{id: id, typ: typeMember, sk: u, sender: u, membership: "join", auth: []string{"$create", "$pl0"}})
		base[stateKey{Type: typeMember, StateKey: u}] = id
	}
	sets := []map[stateKey]string{{}, {}}
	pl := []string{"$pl0", "$pl0"}
	for k, v := range base {
		sets[0][k] = v
		sets[1][k] = v
	}
	for i := range n {
		br := i % 2
		ev := toyEvent{id: fmt.Sprintf("$e%06d", i), ts: int64(i), sender: "@alice", power: 100}
		if i%10 == 0 {
			ev.typ = typePowerLevels
			ev.auth = []string{"$create", "$aj", pl[br]}
			pl[br] = ev.id
		} else {
			u := fmt.Sprintf("@m%d", i%10)
			ev.typ, ev.sk, ev.sender, ev.power = "org.example.state", fmt.Sprintf("k%d", i/2), u, 50
			ev.auth = []string{"$create", "$join-" + u, pl[br]}
		}
		evs = append(evs, ev)
		sets[br][stateKey{Type: ev.typ, StateKey: ev.sk}] = ev.id
	}
	return evs, sets
}

func BenchmarkEngineToy(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		evs, sets := toyForked(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := toyEngine(b, evs, nil)
				e.rules.StateResolution = roomversion.StateResV2
				if _, err := e.resolveV2(context.Background(), sets, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package stateres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// toyEvent describes an event for the ordering tests, which run the
// algorithm against fake auth rules.
type toyEvent struct {
	id, typ, sk, sender, membership string
	ts                              int64
	auth                            []string
	power                           int64
}

type toyChecker struct {
	g     *graph
	evs   map[string]toyEvent // by ID
	power map[string]int64
	allow func(v *authView) bool
}

func (c *toyChecker) allowed(_ context.Context, v *authView) (bool, error) {
	if c.allow == nil {
		return true, nil
	}
	return c.allow(v), nil
}

func (c *toyChecker) senderPower(_ context.Context, ev int32) (int64, error) {
	return c.power[c.g.info[ev].id], nil
}

func toyEngine(t testing.TB, evs []toyEvent, allow func(v *authView) bool) *engine {
	t.Helper()
	byID := make(map[string]toyEvent, len(evs))
	power := make(map[string]int64, len(evs))
	for _, ev := range evs {
		byID[ev.id] = ev
		power[ev.id] = ev.power
	}
	fetch := func(_ context.Context, g *graph, ids []string) error {
		for k, id := range ids {
			ev, ok := byID[id]
			if !ok {
				return fmt.Errorf("%w: %s", ErrMissingEvent, id)
			}
			if _, err := g.addFetched(k, fetched{id: ev.id, typ: ev.typ, stateKey: ev.sk, isState: true,
				sender: ev.sender, membership: ev.membership, ts: ev.ts, authIDs: ev.auth}); err != nil {
				return err
			}
		}
		return nil
	}
	g := newGraph(fetch, 0, 0)
	rules, err := roomversion.Get("10")
	if err != nil {
		t.Fatal(err)
	}
	return &engine{rules: rules, g: g, check: &toyChecker{g: g, evs: byID, power: power, allow: allow}, create: -1}
}

func ids(g *graph, xs []int32) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = g.info[x].id
	}
	return out
}

func load(t *testing.T, e *engine, idList ...string) []int32 {
	t.Helper()
	ctx := context.Background()
	if err := e.g.ensure(ctx, idList); err != nil {
		t.Fatal(err)
	}
	var out []int32
	for _, id := range idList {
		i, _ := e.g.index(id)
		if _, err := e.g.authOf(ctx, i); err != nil {
			t.Fatal(err)
		}
		out = append(out, i)
	}
	return out
}

func TestPowerSortTieBreaks(t *testing.T) {
	t.Parallel()
	// No auth edges among them: order is by power desc, ts asc, ID asc.
	evs := []toyEvent{
		{id: "$a", typ: typePowerLevels, power: 50, ts: 1},
		{id: "$b", typ: typePowerLevels, power: 100, ts: 9},
		{id: "$c", typ: typePowerLevels, power: 50, ts: 0},
		{id: "$d", typ: typePowerLevels, power: 50, ts: 1},
		{id: "$e", typ: typePowerLevels, power: 100, ts: 9},
	}
	e := toyEngine(t, evs, nil)
	got, err := e.powerSort(context.Background(), load(t, e, "$a", "$b", "$c", "$d", "$e"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"$b", "$e", "$c", "$a", "$d"}
	if !slices.Equal(ids(e.g, got), want) {
		t.Fatalf("got %v, want %v", ids(e.g, got), want)
	}
}

func TestPowerSortTopologyFirst(t *testing.T) {
	t.Parallel()
	// $low is cited by $high1, so it comes first even though its sender has
	// less power; $high2 is ready from the start and beats $low.
	evs := []toyEvent{
		{id: "$low", typ: typeJoinRules, power: 0, ts: 5},
		{id: "$high1", typ: typePowerLevels, power: 100, ts: 1, auth: []string{"$low"}},
		{id: "$high2", typ: typePowerLevels, power: 100, ts: 7},
		{id: "$mid", typ: typePowerLevels, power: 50, ts: 0, auth: []string{"$high1", "$outside"}},
		{id: "$outside", typ: typeCreate, power: 100, ts: 0},
	}
	e := toyEngine(t, evs, nil)
	got, err := e.powerSort(context.Background(), load(t, e, "$mid", "$high1", "$high2", "$low"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"$high2", "$low", "$high1", "$mid"}
	if !slices.Equal(ids(e.g, got), want) {
		t.Fatalf("got %v, want %v", ids(e.g, got), want)
	}
}

func TestPowerSortCycle(t *testing.T) {
	t.Parallel()
	evs := []toyEvent{
		{id: "$a", typ: typePowerLevels, auth: []string{"$b"}},
		{id: "$b", typ: typePowerLevels, auth: []string{"$a"}},
	}
	e := toyEngine(t, evs, nil)
	_, err := e.powerSort(context.Background(), load(t, e, "$a", "$b"))
	if !errors.Is(err, ErrAuthCycle) {
		t.Fatalf("err = %v, want ErrAuthCycle", err)
	}
}

func TestMainlineSort(t *testing.T) {
	t.Parallel()
	// Mainline: P2 -> P1 -> P0. Q1 is a fork off P0.
	evs := []toyEvent{
		{id: "$P0", typ: typePowerLevels},
		{id: "$P1", typ: typePowerLevels, auth: []string{"$P0"}},
		{id: "$P2", typ: typePowerLevels, auth: []string{"$P1"}},
		{id: "$Q1", typ: typePowerLevels, auth: []string{"$P0"}},
		{id: "$t-p2", typ: "m.room.topic", ts: 1, auth: []string{"$P2"}},
		{id: "$t-p1", typ: "m.room.topic", ts: 9, auth: []string{"$P1"}},
		{id: "$t-q1", typ: "m.room.topic", ts: 5, auth: []string{"$Q1"}}, // position of P0
		{id: "$t-p0", typ: "m.room.topic", ts: 3, auth: []string{"$P0"}},
		{id: "$t-none", typ: "m.room.topic", ts: 100},                     // infinite position
		{id: "$t-none2", typ: "m.room.topic", ts: 100},                    // same, ID breaks the tie
		{id: "$t-p2b", typ: "m.room.topic", ts: 1, auth: []string{"$P2"}}, // same ts as $t-p2
	}
	e := toyEngine(t, evs, nil)
	// Ties come in the reverse of their ID order.
	all := load(t, e, "$t-p2b", "$t-p1", "$t-q1", "$t-p0", "$t-none2", "$t-none", "$t-p2", "$P2")
	got, err := e.mainlineSort(context.Background(), all[:7], all[7])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"$t-none", "$t-none2", "$t-p0", "$t-q1", "$t-p1", "$t-p2", "$t-p2b"}
	if !slices.Equal(ids(e.g, got), want) {
		t.Fatalf("got %v, want %v", ids(e.g, got), want)
	}
}

// ids returns the sorted event IDs of graph indices.
func (e *engine) ids(idx []int32) []string {
	out := make([]string, len(idx))
	for j, i := range idx {
		out[j] = e.g.info[i].id
	}
	slices.Sort(out)
	return out
}

func TestPartition(t *testing.T) {
	t.Parallel()
	a := map[stateKey]string{{Type: "m.room.create", StateKey: ""}: "$c", {Type: "m.room.topic", StateKey: ""}: "$t1", {Type: "x", StateKey: ""}: "$x"}
	b := map[stateKey]string{{Type: "m.room.create", StateKey: ""}: "$c", {Type: "m.room.topic", StateKey: ""}: "$t2"}
	keys := newKeyTable(0)
	p := partition(keys, nil, []map[stateKey]string{a, b})
	un, conf := unconflictedMap(keys, p), slices.Clone(p.conflicted)
	for i, id := range p.conflicted {
		k := keys.list[p.keys[i]]
		if a[k] != id && b[k] != id {
			t.Errorf("conflicted %s listed under %v", id, k)
		}
		if want := uint64(0); (a[k] == id) != (p.in[i]&1 != want) || (b[k] == id) != (p.in[i]&2 != want) {
			t.Errorf("conflicted %s: sets mask %b", id, p.in[i])
		}
	}
	if len(un) != 1 || un[stateKey{Type: "m.room.create", StateKey: ""}] != "$c" {
		t.Fatalf("unconflicted = %v", un)
	}
	slices.Sort(conf)
	if want := []string{"$t1", "$t2", "$x"}; !slices.Equal(conf, want) {
		t.Fatalf("conflicted = %v, want %v", conf, want)
	}
}

// TestPartitionThreeSets: repeats of an event under one key merge their
// set masks; an event under two keys stays listed under each.
func TestPartitionThreeSets(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := stateKey{Type: "a"}, stateKey{Type: "b"}, stateKey{Type: "c"}
	sets := []map[stateKey]string{
		{k1: "$x", k2: "$y", k3: "$z"},
		{k1: "$x", k2: "$w"},
		{k1: "$v", k2: "$y", k3: "$x"},
	}
	for _, ids := range []*idTable{nil, newIDTable(0, 44)} {
		keys := newKeyTable(0)
		p := partition(keys, ids, sets)
		got := map[string]uint64{}
		for i, id := range p.conflicted {
			got[id+" "+keys.list[p.keys[i]].Type] = p.in[i]
		}
		want := map[string]uint64{
			"$x a": 0b011, "$v a": 0b100,
			"$y b": 0b101, "$w b": 0b010,
			"$z c": 0b001, "$x c": 0b100,
		}
		if !maps.Equal(got, want) || len(p.conflicted) != len(want) || len(p.uIDs) != 0 {
			t.Fatalf("with ID table %v: partition = %v (%d entries), unconflicted %v; want %v", ids != nil, got, len(p.conflicted), p.uIDs, want)
		}
		if ids != nil && len(p.cE) != len(p.conflicted) {
			t.Fatalf("%d entries for %d conflicted events", len(p.cE), len(p.conflicted))
		}
	}
}

// unconflictedMap returns the unconflicted state map of p.
func unconflictedMap(keys *keyTable, p partitioned) map[stateKey]string {
	out := map[stateKey]string{}
	for i, kid := range p.uKeys {
		out[keys.list[kid]] = p.uIDs[i]
	}
	return out
}

// authDiffRoom: create <- m1 (member) <- {a1 <- a2 on branch A} and {b1 on
// branch B}. Set A holds a2, set B holds b1; m1 is in both states.
func authDiffRoom() []toyEvent {
	return []toyEvent{
		{id: "$create", typ: typeCreate},
		{id: "$m1", typ: typeMember, sk: "@u:x", auth: []string{"$create"}},
		{id: "$a1", typ: typePowerLevels, auth: []string{"$create", "$m1"}},
		{id: "$a2", typ: typePowerLevels, auth: []string{"$create", "$m1", "$a1"}},
		{id: "$b1", typ: typePowerLevels, auth: []string{"$create", "$m1"}},
		{id: "$t", typ: "m.room.topic", auth: []string{"$create", "$m1", "$a1"}},
	}
}

func TestFullConflictedSetAuthDifference(t *testing.T) {
	t.Parallel()
	e := toyEngine(t, authDiffRoom(), nil)
	setA := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@u:x"}: "$m1", {Type: typePowerLevels, StateKey: ""}: "$a2"}
	setB := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@u:x"}: "$m1", {Type: typePowerLevels, StateKey: ""}: "$b1"}
	p := partition(e.g.keys, e.g.byID, []map[stateKey]string{setA, setB})
	idx, err := e.fullConflictedSet(context.Background(), []map[stateKey]string{setA, setB}, p, false)
	if err != nil {
		t.Fatal(err)
	}
	fcs := e.ids(idx)
	// $a1 is only in A's auth chain; $m1 and $create are in both.
	if want := []string{"$a1", "$a2", "$b1"}; !slices.Equal(fcs, want) {
		t.Fatalf("full conflicted set = %v, want %v", fcs, want)
	}
}

// TestFullConflictedSetManySets: past 64 state sets partition keeps no set
// masks and the walks start from the sets' own entries; both ways agree.
func TestFullConflictedSetManySets(t *testing.T) {
	t.Parallel()
	setA := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@u:x"}: "$m1", {Type: typePowerLevels, StateKey: ""}: "$a2"}
	setB := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@u:x"}: "$m1", {Type: typePowerLevels, StateKey: ""}: "$b1"}
	run := func(n int) []string {
		sets := []map[stateKey]string{setA}
		for len(sets) < n {
			sets = append(sets, setB)
		}
		e := toyEngine(t, authDiffRoom(), nil)
		p := partition(e.g.keys, e.g.byID, sets)
		if (p.in == nil) != (n > 64) {
			t.Fatalf("%d sets: masks kept = %v", n, p.in != nil)
		}
		idx, err := e.fullConflictedSet(context.Background(), sets, p, false)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Compact(e.ids(idx))
	}
	few, many := run(3), run(65)
	if want := []string{"$a1", "$a2", "$b1"}; !slices.Equal(few, want) || !slices.Equal(many, want) {
		t.Fatalf("3 sets: %v, 65 sets: %v, want %v", few, many, want)
	}
}

func TestConflictedSubgraph(t *testing.T) {
	t.Parallel()
	// c1 <- x <- y <- c2 is a path between conflicted events; z hangs off
	// c2's chain but leads to no conflicted event.
	evs := []toyEvent{
		{id: "$z", typ: "z"},
		{id: "$c1", typ: "k", auth: []string{"$z"}},
		{id: "$x", typ: "x", auth: []string{"$c1"}},
		{id: "$y", typ: "y", auth: []string{"$x", "$z"}},
		{id: "$c2", typ: "k", sk: "2", auth: []string{"$y"}},
	}
	e := toyEngine(t, evs, nil)
	load(t, e, "$c1", "$c2")
	if err := e.g.loadClosure(context.Background(), load(t, e, "$c1", "$c2")); err != nil {
		t.Fatal(err)
	}
	idx, err := e.conflictedSubgraph(context.Background(), load(t, e, "$c1", "$c2"))
	if err != nil {
		t.Fatal(err)
	}
	sub := e.ids(idx)
	if want := []string{"$x", "$y"}; !slices.Equal(sub, want) {
		t.Fatalf("subgraph = %v, want %v", sub, want)
	}
}

// toyRules allows member events always and other events only from a joined
// sender whose level in the view's power levels (or, without one, being
// "@alice") is at least 50.
func toyRules(levels map[string]map[string]int64) func(v *authView) bool {
	return func(v *authView) bool {
		ctx := context.Background()
		g := v.e.g
		evs := v.e.check.(*toyChecker).evs
		ev := evs[g.info[v.ev].id]
		if ev.typ == typeMember || ev.typ == typeCreate {
			return true
		}
		m := v.get(ctx, typeMember, ev.sender)
		if m < 0 || evs[g.info[m].id].membership != "join" {
			return false
		}
		pl := v.get(ctx, typePowerLevels, "")
		if pl < 0 {
			return ev.sender == "@alice"
		}
		return levels[g.info[pl].id][ev.sender] >= 50
	}
}

func TestResolveAdminLeftV2VersusV21(t *testing.T) {
	t.Parallel()
	evs := []toyEvent{
		{id: "$create", typ: typeCreate, sender: "@alice", ts: 1},
		{id: "$aj", typ: typeMember, sk: "@alice", sender: "@alice", membership: "join", ts: 2, auth: []string{"$create"}},
		{id: "$P0", typ: typePowerLevels, sender: "@alice", ts: 3, auth: []string{"$create", "$aj"}},
		{id: "$bj", typ: typeMember, sk: "@bob", sender: "@bob", membership: "join", ts: 4, auth: []string{"$create", "$P0"}},
		{id: "$P1", typ: typePowerLevels, sender: "@alice", ts: 5, auth: []string{"$create", "$aj", "$P0"}},
		{id: "$L", typ: typeMember, sk: "@alice", sender: "@alice", membership: "leave", ts: 6, auth: []string{"$create", "$aj", "$P1"}},
	}
	levels := map[string]map[string]int64{"$P0": {"@alice": 100}, "$P1": {"@alice": 100, "@bob": 100}}
	base := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@alice"}: "$L", {Type: typeMember, StateKey: "@bob"}: "$bj"}
	s1 := maps.Clone(base)
	s1[stateKey{Type: typePowerLevels, StateKey: ""}] = "$P1"
	s2 := maps.Clone(base)
	s2[stateKey{Type: typePowerLevels, StateKey: ""}] = "$P0"
	for _, tc := range []struct {
		alg  roomversion.StateResAlgorithm
		want string
	}{{roomversion.StateResV2, ""}, {roomversion.StateResV2_1, "$P1"}} {
		e := toyEngine(t, evs, toyRules(levels))
		e.rules.StateResolution = tc.alg
		got, err := e.resolveV2(context.Background(), []map[stateKey]string{s1, s2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got[stateKey{Type: typePowerLevels, StateKey: ""}] != tc.want {
			t.Errorf("%v: power levels = %q, want %q", tc.alg, got[stateKey{Type: typePowerLevels, StateKey: ""}], tc.want)
		}
		if got[stateKey{Type: typeMember, StateKey: "@alice"}] != "$L" {
			t.Errorf("%v: unconflicted entry lost: %v", tc.alg, got)
		}
	}
}

// naiveIndex answers AuthChainIndex questions by brute force over a toy
// room, as a database index would.
type naiveIndex struct{ byID map[string]toyEvent }

func (x naiveIndex) chain(id string) map[string]bool {
	out := map[string]bool{}
	stack := slices.Clone(x.byID[id].auth)
	for len(stack) > 0 {
		a := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if out[a] {
			continue
		}
		out[a] = true
		stack = append(stack, x.byID[a].auth...)
	}
	return out
}

func (x naiveIndex) AuthChainDifference(_ context.Context, sets [][]string) ([]string, error) {
	return chainDifference(sets, x.chain), nil
}

func (x naiveIndex) ConflictedSubgraph(_ context.Context, conflicted []string) ([]string, error) {
	var out []string
	for id := range x.byID {
		below := false // id's chain holds a conflicted event
		ch := x.chain(id)
		for _, c := range conflicted {
			if ch[c] {
				below = true
			}
		}
		above := false // id is in the chain of a conflicted event
		for _, c := range conflicted {
			if x.chain(c)[id] {
				above = true
			}
		}
		if below && above {
			out = append(out, id)
		}
	}
	return out, nil
}

func TestIndexModeMatchesFullMode(t *testing.T) {
	t.Parallel()
	evs := []toyEvent{
		{id: "$create", typ: typeCreate, sender: "@alice", ts: 1},
		{id: "$aj", typ: typeMember, sk: "@alice", sender: "@alice", membership: "join", ts: 2, auth: []string{"$create"}},
		{id: "$P0", typ: typePowerLevels, sender: "@alice", ts: 3, auth: []string{"$create", "$aj"}},
		{id: "$bj", typ: typeMember, sk: "@bob", sender: "@bob", membership: "join", ts: 4, auth: []string{"$create", "$P0"}},
		{id: "$P1", typ: typePowerLevels, sender: "@alice", ts: 5, auth: []string{"$create", "$aj", "$P0"}},
		{id: "$P2", typ: typePowerLevels, sender: "@bob", ts: 6, auth: []string{"$create", "$bj", "$P1"}},
		{id: "$T", typ: "m.room.topic", sender: "@bob", ts: 7, auth: []string{"$create", "$bj", "$P1"}},
		{id: "$U", typ: "m.room.name", sender: "@bob", ts: 8, auth: []string{"$create", "$bj", "$P0"}},
	}
	levels := map[string]map[string]int64{
		"$P0": {"@alice": 100}, "$P1": {"@alice": 100, "@bob": 100}, "$P2": {"@alice": 100, "@bob": 100},
	}
	base := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@alice"}: "$aj", {Type: typeMember, StateKey: "@bob"}: "$bj", {Type: "m.room.topic", StateKey: ""}: "$T"}
	s1 := maps.Clone(base)
	s1[stateKey{Type: typePowerLevels, StateKey: ""}] = "$P0"
	s1[stateKey{Type: "m.room.name", StateKey: ""}] = "$U"
	s2 := maps.Clone(base)
	s2[stateKey{Type: typePowerLevels, StateKey: ""}] = "$P2"
	byID := map[string]toyEvent{}
	for _, ev := range evs {
		byID[ev.id] = ev
	}
	for _, alg := range []roomversion.StateResAlgorithm{roomversion.StateResV2, roomversion.StateResV2_1} {
		var results []map[stateKey]string
		for _, index := range []AuthChainIndex{nil, naiveIndex{byID}} {
			e := toyEngine(t, evs, toyRules(levels))
			e.rules.StateResolution = alg
			got, err := e.resolveV2(context.Background(), []map[stateKey]string{s1, s2}, index)
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, got)
		}
		if !maps.Equal(results[0], results[1]) {
			t.Errorf("%v: full mode %v, index mode %v", alg, results[0], results[1])
		}
		// The stale P0 set: in v2 the subgraph event P1 is missing, so P2
		// (bob, who only P1 empowers) is rejected against P0.
		want := "$P2"
		if alg == roomversion.StateResV2 {
			want = "$P0"
		}
		if got := results[0][stateKey{Type: typePowerLevels, StateKey: ""}]; got != want {
			t.Errorf("%v: power levels = %s, want %s", alg, got, want)
		}
	}
}

func (x naiveIndex) InAuthChains(_ context.Context, of, candidates []string) ([]string, error) {
	all := map[string]bool{}
	for _, id := range of {
		maps.Copy(all, x.chain(id))
	}
	var out []string
	for _, c := range candidates {
		if all[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

func TestResolveV1(t *testing.T) {
	t.Parallel()
	// Two power levels events of depths 3 and 5: the deeper one is applied
	// after the shallower one if it passes against it. Topics: the deepest
	// that passes wins; "$t-bad" (deepest) fails the toy rules.
	evs := []toyEvent{
		{id: "$create", typ: typeCreate, sender: "@alice"},
		{id: "$aj", typ: typeMember, sk: "@alice", sender: "@alice", membership: "join"},
		{id: "$bj", typ: typeMember, sk: "@bob", sender: "@bob", membership: "join"},
		{id: "$pl-a", typ: typePowerLevels, sender: "@alice"},
		{id: "$pl-b", typ: typePowerLevels, sender: "@bob"},
		{id: "$t-ok", typ: "m.room.topic", sender: "@alice"},
		{id: "$t-bad", typ: "m.room.topic", sender: "@bob"},
		{id: "$t-old", typ: "m.room.topic", sender: "@alice"},
	}
	depth := map[string]int64{"$pl-a": 3, "$pl-b": 5, "$t-ok": 6, "$t-bad": 9, "$t-old": 2}
	levels := map[string]map[string]int64{"$pl-a": {"@alice": 100}, "$pl-b": {"@alice": 100, "@bob": 100}}
	common := map[stateKey]string{{Type: typeCreate, StateKey: ""}: "$create", {Type: typeMember, StateKey: "@alice"}: "$aj", {Type: typeMember, StateKey: "@bob"}: "$bj"}
	s1, s2, s3 := maps.Clone(common), maps.Clone(common), maps.Clone(common)
	s1[stateKey{Type: typePowerLevels, StateKey: ""}] = "$pl-a"
	s2[stateKey{Type: typePowerLevels, StateKey: ""}] = "$pl-b"
	s1[stateKey{Type: "m.room.topic", StateKey: ""}] = "$t-ok"
	s2[stateKey{Type: "m.room.topic", StateKey: ""}] = "$t-bad"
	s3[stateKey{Type: "m.room.topic", StateKey: ""}] = "$t-old"
	e := toyEngine(t, evs, toyRules(levels))
	for i := range e.g.nodes {
		e.g.nodes[i].depth = depth[e.g.info[i].id]
	}
	// Loading happens on demand; set depths in the fetch path instead.
	e.g.fetch = func(base fetchFunc) fetchFunc {
		return func(ctx context.Context, g *graph, ids []string) error {
			if err := base(ctx, g, ids); err != nil {
				return err
			}
			for _, id := range ids {
				i, _ := g.index(id)
				g.nodes[i].depth = depth[id]
			}
			return nil
		}
	}(e.g.fetch)
	got, err := e.resolveV1(context.Background(), []map[stateKey]string{s1, s2, s3})
	if err != nil {
		t.Fatal(err)
	}
	// $pl-a first (depth 3); $pl-b by bob fails against it (bob 0).
	if got[stateKey{Type: typePowerLevels, StateKey: ""}] != "$pl-a" {
		t.Errorf("power levels = %s, want $pl-a", got[stateKey{Type: typePowerLevels, StateKey: ""}])
	}
	if got[stateKey{Type: "m.room.topic", StateKey: ""}] != "$t-ok" {
		t.Errorf("topic = %s, want $t-ok", got[stateKey{Type: "m.room.topic", StateKey: ""}])
	}
	if got[stateKey{Type: typeMember, StateKey: "@bob"}] != "$bj" {
		t.Errorf("unconflicted entry lost")
	}
}

// ChainDifference is chainDifference for the external test package's
// indexes (defined in a test file: not part of the package's API).
var ChainDifference = chainDifference

// chainDifference is the auth difference by definition, for the test
// indexes: the events in some but not all of the sets' auth chains, where
// chain(id) is the auth chain of one event.
func chainDifference(sets [][]string, chain func(string) map[string]bool) []string {
	count := map[string]int{}
	for _, s := range sets {
		c := map[string]bool{}
		for _, id := range s {
			maps.Copy(c, chain(id))
		}
		for id := range c {
			count[id]++
		}
	}
	var out []string
	for id, n := range count {
		if n < len(sets) {
			out = append(out, id)
		}
	}
	return out
}

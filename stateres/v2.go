package stateres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// partitioned is the state sets split as the spec's first step does, with
// keys as key IDs of the graph's key table, which holds every key of the
// sets.
type partitioned struct {
	// The unconflicted state map: key IDs and event IDs. uAt[k] is the
	// position of key ID k in them, or -1 (conflicted, or not a key of the
	// sets).
	uKeys []int32
	uIDs  []string
	uAt   []int32
	// first[k], firstSet[k]: the event the first set holding key ID k has
	// for it, and that set. With an ID table, firstE[k] is the event's
	// entry in it, and uE and cE are the entries of uIDs and conflicted.
	first    []string
	firstSet []int32
	firstE   []int32
	uE, cE   []int32
	// conflicted lists the events of the conflicted state set, each with
	// the key ID it is under (keys[i]) and, for up to 64 sets, the sets
	// that hold it there (bit j of in[i] for set j; in is nil for more
	// sets). An event is listed once per key.
	conflicted []string
	keys       []int32
	in         []uint64
}

// unconflicted reports whether key ID k is in the unconflicted state map.
func (p *partitioned) unconflicted(k int32) bool {
	return k >= 0 && int(k) < len(p.uAt) && p.uAt[k] >= 0
}

// partition splits the state sets into the unconflicted state map and the
// conflicted state set (spec: "Unconflicted state map and conflicted state
// set"), interning every key in keys. A key missing from some set is
// conflicted. When ids is not nil, every event ID is entered in it too
// (as wanted), so events are compared by entry and later loaded by entry.
//
// Each entry of each set is read once and its key looked up in keys, whose
// lookups compare against the table's own copy of the key: looking keys up
// in the other sets' maps would compare against those maps' key strings,
// which on a large room are mostly out of the cache.
func partition(keys *keyTable, ids *idTable, sets []map[stateKey]string) partitioned {
	p, _ := partitionLoading(keys, ids, sets, nil)
	return p
}

// loadChunk is how many new event IDs partitionLoading collects before it
// has them loaded.
const loadChunk = 1024

// partitionLoading is partition that also has the events of the sets
// loaded as it meets them: when load is not nil (ids must not be nil
// then), every loadChunk event IDs not loaded yet are passed to load with
// their entries, marked pending. Each event is then read right after its
// key and ID were, instead of in a second pass over every event once the
// sets are split. An error of load stops the partition and is returned.
func partitionLoading(keys *keyTable, ids *idTable, sets []map[stateKey]string, load func(entries []int32, ids []string) error) (partitioned, error) {
	total := 0
	for _, s := range sets {
		total += len(s)
	}
	// Most keys are in every set: make room for those of the largest.
	largest := 0
	for _, s := range sets {
		largest = max(largest, len(s))
	}
	keys.reserve(largest)
	var (
		p     partitioned
		count = make([]int32, 0, largest)
		same  = make([]bool, 0, largest)
	)
	p.first = make([]string, 0, largest)
	p.firstSet = make([]int32, 0, largest)
	if ids != nil {
		ids.reserve(largest, 44)
		p.firstE = make([]int32, 0, largest)
	}
	type entry struct {
		key, set, ev int32
		id           string
	}
	entries := make([]entry, 0, total)
	var newE []int32
	var newIDs []string
	add := func(j int, k stateKey, id string) {
		kid, _ := keys.intern(k)
		for int(kid) >= len(count) {
			p.first = append(p.first, "")
			p.firstSet = append(p.firstSet, -1)
			count = append(count, 0)
			same = append(same, true)
			if ids != nil {
				p.firstE = append(p.firstE, -1)
			}
		}
		ev := int32(-1)
		if ids != nil {
			ev, _ = ids.insert(id, wanted)
			if load != nil && ids.vals[ev] == wanted {
				ids.vals[ev] = pending
				newE = append(newE, ev)
				newIDs = append(newIDs, id)
			}
		}
		switch {
		case count[kid] == 0:
			p.first[kid], p.firstSet[kid] = id, int32(j)
			if ids != nil {
				p.firstE[kid] = ev
			}
		case ids != nil:
			same[kid] = same[kid] && ev == p.firstE[kid]
		default:
			same[kid] = same[kid] && id == p.first[kid]
		}
		count[kid]++
		entries = append(entries, entry{kid, int32(j), ev, id})
	}
	flush := func() error {
		if len(newE) == 0 {
			return nil
		}
		err := load(newE, newIDs)
		newE, newIDs = newE[:0], newIDs[:0]
		return err
	}
	for j, s := range sets {
		for k, id := range s {
			add(j, k, id)
			if len(newE) == loadChunk {
				if err := flush(); err != nil {
					return partitioned{}, err
				}
			}
		}
	}
	if load != nil {
		if err := flush(); err != nil {
			return partitioned{}, err
		}
	}
	p.uAt = make([]int32, len(count))
	for kid := range count {
		p.uAt[kid] = -1
		if int(count[kid]) == len(sets) && same[kid] {
			p.uAt[kid] = int32(len(p.uKeys))
			p.uKeys = append(p.uKeys, int32(kid))
			p.uIDs = append(p.uIDs, p.first[kid])
			if ids != nil {
				p.uE = append(p.uE, p.firstE[kid])
			}
		}
	}
	conflicted := entries[:0]
	for _, en := range entries {
		if p.uAt[en.key] < 0 {
			conflicted = append(conflicted, en)
		}
	}
	if len(sets) > 2 {
		// An event can be listed under its key by several sets: sort the
		// entries so that repeats are adjacent, and merge them below. (With
		// two sets, an event both hold under one key is unconflicted.)
		slices.SortFunc(conflicted, func(a, b entry) int {
			if a.key != b.key {
				return int(a.key - b.key)
			}
			if ids != nil {
				return int(a.ev - b.ev)
			}
			return strings.Compare(a.id, b.id)
		})
	}
	masks := len(sets) <= 64
	p.conflicted = make([]string, 0, len(conflicted))
	p.keys = make([]int32, 0, len(conflicted))
	if masks {
		p.in = make([]uint64, 0, len(conflicted))
	}
	for i, en := range conflicted {
		dup := i > 0 && conflicted[i-1].key == en.key &&
			(ids != nil && conflicted[i-1].ev == en.ev || ids == nil && conflicted[i-1].id == en.id)
		if !dup {
			p.conflicted = append(p.conflicted, en.id)
			p.keys = append(p.keys, en.key)
			if ids != nil {
				p.cE = append(p.cE, en.ev)
			}
			if masks {
				p.in = append(p.in, 0)
			}
		}
		if masks {
			p.in[len(p.in)-1] |= 1 << en.set
		}
	}
	return p, nil
}

// resolveV2 runs state resolution v2, or v2.1 when the rules say so.
func (e *engine) resolveV2(ctx context.Context, sets []map[stateKey]string, index AuthChainIndex) (map[stateKey]string, error) {
	var ids *idTable
	var load func([]int32, []string) error
	if index == nil {
		// Every event of the sets gets loaded: enter them now, and load
		// them as the sets are read.
		ids = e.g.byID
		load = func(entries []int32, missing []string) error {
			e.g.batch = append(e.g.batch[:0], entries...)
			return e.g.fetchBatch(ctx, missing)
		}
	}
	p, err := partitionLoading(e.g.keys, ids, sets, load)
	if err != nil {
		return nil, err
	}
	conflicted := p.conflicted
	if len(conflicted) == 0 {
		// Every set is the same.
		return maps.Clone(sets[0]), nil
	}
	v21 := e.rules.StateResolution == roomversion.StateResV2_1
	g := e.g

	// The full conflicted set, by index (fcsAll may repeat an event).
	var fcsAll []int32
	var fcsIDs []string // with an index only
	if index != nil {
		ids := make([][]string, len(sets))
		for i, s := range sets {
			ids[i] = slices.AppendSeq(make([]string, 0, len(s)), maps.Values(s))
		}
		diff, err := index.AuthChainDifference(ctx, ids)
		if err != nil {
			return nil, err
		}
		fcsIDs = append(fcsIDs, conflicted...)
		fcsIDs = append(fcsIDs, diff...)
		if v21 {
			sub, err := index.ConflictedSubgraph(ctx, conflicted)
			if err != nil {
				return nil, err
			}
			fcsIDs = append(fcsIDs, sub...)
		}
		// The graph was sized for a small conflict: make room for the full
		// conflicted set and, half as many again, the auth events its
		// events cite (loaded below).
		g.reserve(len(fcsIDs) + len(fcsIDs)/2)
		if err := g.ensure(ctx, fcsIDs); err != nil {
			return nil, err
		}
		fcsAll = make([]int32, len(fcsIDs))
		for j, id := range fcsIDs {
			fcsAll[j], _ = g.index(id)
		}
	} else {
		var err error
		if fcsAll, err = e.fullConflictedSet(ctx, sets, p, v21); err != nil {
			return nil, err
		}
	}

	// Membership of the full conflicted set, and the auth events of each
	// member (needed for edges, power levels and the fallback).
	// Node flags, indexed by node; the graph may grow below, so read
	// them through at.
	const (
		flagFCS = 1 << iota // in the full conflicted set
		flagX               // in X (step 1)
	)
	flags := make([]uint8, len(g.nodes))
	at := func(i int32) uint8 {
		if int(i) < len(flags) {
			return flags[i]
		}
		return 0
	}
	fcs := make([]int32, 0, len(fcsAll))
	for _, i := range fcsAll {
		if flags[i]&flagFCS != 0 {
			continue
		}
		flags[i] |= flagFCS
		fcs = append(fcs, i)
	}
	// One provider call for the auth events of every member not loaded
	// yet, not one per member.
	if err := g.loadAuth(ctx, fcs); err != nil {
		return nil, err
	}
	if err := e.findCreate(ctx, fcs); err != nil {
		return nil, err
	}

	// Step 1: power events of the full conflicted set, enlarged by the
	// events of their auth chains that are in the full conflicted set.
	nx := 0
	var powers []int32
	for _, i := range fcs {
		if g.nodes[i].power {
			flags[i] |= flagX
			nx++
			powers = append(powers, i)
		}
	}
	if index != nil {
		powerIDs := make([]string, len(powers))
		for j, i := range powers {
			powerIDs[j] = g.info[i].id
		}
		found, err := index.InAuthChains(ctx, powerIDs, fcsIDs)
		if err != nil {
			return nil, err
		}
		for _, id := range found {
			if i, ok := g.index(id); ok {
				if at(i)&(flagFCS|flagX) == flagFCS {
					flags[i] |= flagX
					nx++
				}
			}
		}
	} else {
		// The whole auth chains are loaded: walk them.
		seen := make([]bool, len(g.nodes))
		var stack []int32
		for _, i := range powers {
			stack = append(stack, g.nodes[i].auth...)
		}
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[i] {
				continue
			}
			seen[i] = true
			if at(i)&(flagFCS|flagX) == flagFCS {
				flags[i] |= flagX
				nx++
			}
			stack = append(stack, g.nodes[i].auth...)
		}
	}
	xs := make([]int32, 0, nx)
	rest := make([]int32, 0, len(fcs)-nx)
	for _, i := range fcs {
		if flags[i]&flagX != 0 {
			xs = append(xs, i)
		} else {
			rest = append(rest, i)
		}
	}
	sortedX, err := e.powerSort(ctx, xs)
	if err != nil {
		return nil, err
	}

	// Step 2: iterative auth checks from the unconflicted state map (v2) or
	// from an empty state map (v2.1).
	if !v21 {
		e.setBasePartition(&p)
	}
	st := &resolvedState{}
	if err := e.iterate(ctx, st, sortedX, false); err != nil {
		return nil, err
	}

	// Step 3: mainline ordering of the remaining events, based on the power
	// levels event of the partially resolved state.
	v := &authView{e: e, st: st, ev: -1, noFallback: true}
	pl := v.get(ctx, typePowerLevels, "")
	if v.err != nil {
		return nil, v.err
	}
	sortedRest, err := e.mainlineSort(ctx, rest, pl)
	if err != nil {
		return nil, err
	}

	// Step 4: iterative auth checks on the partially resolved state.
	if err := e.iterate(ctx, st, sortedRest, false); err != nil {
		return nil, err
	}

	// Step 5: the unconflicted state map wins; the other keys take the
	// partially resolved state. Start from a copy of the first set, which
	// holds the unconflicted map, and change what differs.
	out := maps.Clone(sets[0])
	for kid, k := range g.keys.list {
		kid := int32(kid)
		if p.unconflicted(kid) {
			continue
		}
		in0 := int(kid) < len(p.firstSet) && p.firstSet[kid] == 0
		x := st.getKey(kid)
		switch {
		case x >= 0 && in0 && p.first[kid] == g.info[x].id:
		case x >= 0:
			out[k] = g.info[x].id
		case in0:
			delete(out, k)
		}
	}
	return out, nil
}

// findCreate sets e.create for room versions whose events do not cite the
// create event: its ID is derived from the room ID.
func (e *engine) findCreate(ctx context.Context, fcs []int32) error {
	e.create = -1
	if !e.rules.RoomIDFromCreateEvent || len(fcs) == 0 {
		return nil
	}
	roomID := ""
	for _, i := range fcs {
		if r := e.g.info[i].roomID; r != "" {
			roomID = r
			break
		}
	}
	if len(roomID) < 2 || roomID[0] != '!' {
		return nil
	}
	id := "$" + roomID[1:]
	if err := e.g.ensure(ctx, []string{id}); err != nil {
		return err
	}
	e.create, _ = e.g.index(id)
	return nil
}

// fullConflictedSet computes the conflicted set plus the auth difference
// (plus, for v2.1, the conflicted state subgraph) by loading the auth chains
// of every event in the state sets, and returns their indices. It checks
// that every state set entry names an event of its key, as they are all
// loaded here.
func (e *engine) fullConflictedSet(ctx context.Context, sets []map[stateKey]string, p partitioned, v21 bool) ([]int32, error) {
	g := e.g
	// Every value of every set is an unconflicted or a conflicted event.
	all := slices.Concat(p.uIDs, p.conflicted)
	keys := slices.Concat(p.uKeys, p.keys)
	roots, err := g.loadEntries(ctx, all, slices.Concat(p.uE, p.cE))
	if err != nil {
		return nil, err
	}
	for j, i := range roots {
		if err := e.checkEntry(keys[j], g.keys.list[keys[j]], i); err != nil {
			return nil, err
		}
	}
	e.entriesChecked = true
	if err := g.loadClosure(ctx, roots); err != nil {
		return nil, err
	}
	n := len(g.nodes)
	conflicted := roots[len(p.uIDs):]

	// common marks the auth chains of the unconflicted events: they are in
	// every set's auth chain. The set is closed under auth edges, so walks
	// below can stop at it.
	common := make([]bool, n)
	var stack []int32
	for _, i := range roots[:len(p.uIDs)] {
		stack = append(stack, g.nodes[i].auth...)
	}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if common[i] {
			continue
		}
		common[i] = true
		stack = append(stack, g.nodes[i].auth...)
	}

	// count[i] = in how many sets' auth chains event i (outside common) is.
	// A set's walk starts from its entries that are not unconflicted: the
	// conflicted events it holds.
	count := make([]int32, n)
	stamp := make([]int32, n)
	for si, s := range sets {
		mark := int32(si + 1)
		stack = stack[:0]
		if p.in != nil {
			for j, i := range conflicted {
				if p.in[j]&(1<<si) != 0 {
					stack = append(stack, g.nodes[i].auth...)
				}
			}
		} else {
			for k, id := range s {
				if p.unconflicted(g.keys.find(k.Type, k.StateKey)) {
					continue
				}
				i, _ := g.index(id)
				stack = append(stack, g.nodes[i].auth...)
			}
		}
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if common[i] || stamp[i] == mark {
				continue
			}
			stamp[i] = mark
			count[i]++
			stack = append(stack, g.nodes[i].auth...)
		}
	}
	fcs := slices.Clone(conflicted)
	for i := range n {
		if count[i] > 0 && int(count[i]) < len(sets) {
			fcs = append(fcs, int32(i))
		}
	}
	if v21 {
		sub, err := e.conflictedSubgraph(ctx, conflicted)
		if err != nil {
			return nil, err
		}
		fcs = append(fcs, sub...)
	}
	return fcs, nil
}

// conflictedSubgraph returns the events on auth_events paths between two
// events of the conflicted state set: events in the auth chain of a
// conflicted event whose own auth chain holds a conflicted event. The
// conflicted events themselves are in the full conflicted set already. The
// auth chains of the conflicted events must be loaded (loadClosure).
func (e *engine) conflictedSubgraph(ctx context.Context, conflicted []int32) ([]int32, error) {
	g := e.g
	n := len(g.nodes)
	isConflicted := make([]bool, n)
	// above[i]: i is in the auth chain of a conflicted event.
	above := make([]bool, n)
	var stack []int32
	for _, i := range conflicted {
		isConflicted[i] = true
		stack = append(stack, g.nodes[i].auth...)
	}
	var order []int32
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if above[i] {
			continue
		}
		above[i] = true
		order = append(order, i)
		stack = append(stack, g.nodes[i].auth...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// reaches: i's auth chain holds a conflicted event. Computed with an
	// iterative post-order walk over the events above.
	const (
		unvisited = iota
		onStack
		no
		yes
	)
	state := make([]uint8, n)
	var out []int32
	type frame struct {
		i    int32
		next int
	}
	var walk []frame
	for _, start := range order {
		if state[start] != unvisited {
			continue
		}
		walk = append(walk[:0], frame{i: start})
		state[start] = onStack
		for len(walk) > 0 {
			f := &walk[len(walk)-1]
			auth := g.nodes[f.i].auth
			if f.next < len(auth) {
				a := auth[f.next]
				f.next++
				if !above[a] {
					continue
				}
				switch state[a] {
				case unvisited:
					state[a] = onStack
					walk = append(walk, frame{i: a})
				case onStack:
					return nil, fmt.Errorf("%w: at %s", ErrAuthCycle, g.info[a].id)
				}
				continue
			}
			res := uint8(no)
			for _, a := range auth {
				if isConflicted[a] || state[a] == yes {
					res = yes
					break
				}
			}
			state[f.i] = res
			if res == yes {
				out = append(out, f.i)
			}
			walk = walk[:len(walk)-1]
		}
	}
	return out, nil
}

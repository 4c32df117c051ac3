package stateres

import (
	"context"
	"fmt"
	"slices"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// partitioned is the state sets split as the spec's first step does.
type partitioned struct {
	unconflicted map[stateKey]string
	// conflicted lists the events of the conflicted state set, each with
	// the key it is under (keys[i]) and, for up to 64 sets, the sets that
	// hold it there (bit j of in[i] for set j; in is nil for more sets).
	// An event listed once per key: with more than two sets, repeats of an
	// event under the same key are merged.
	conflicted []string
	keys       []stateKey
	in         []uint64
}

// partition splits the state sets into the unconflicted state map and the
// conflicted state set (spec: "Unconflicted state map and conflicted state
// set"). A key missing from some set is conflicted.
func partition(sets []map[stateKey]string) partitioned {
	p := partitioned{unconflicted: make(map[stateKey]string)}
	masks := len(sets) <= 64
	// Each conflicted entry comes from one entry of one set.
	total := 0
	for _, s := range sets {
		total += len(s)
	}
	p.conflicted = make([]string, 0, total)
	p.keys = make([]stateKey, 0, total)
	if masks {
		p.in = make([]uint64, 0, total)
	}
	add := func(k stateKey, id string, set int) {
		p.conflicted = append(p.conflicted, id)
		p.keys = append(p.keys, k)
		if masks {
			p.in = append(p.in, 1<<set)
		}
	}
	found := 0 // keys of set 0 that every other set has
	// The other sets' entries for the key at hand (one lookup each).
	vals := make([]string, len(sets))
	has := make([]bool, len(sets))
	for k, v0 := range sets[0] {
		vals[0], has[0] = v0, true
		same := true
		inAll := true
		for j := 1; j < len(sets); j++ {
			v, ok := sets[j][k]
			vals[j], has[j] = v, ok
			if !ok {
				inAll, same = false, false
			} else if v != v0 {
				same = false
			}
		}
		if inAll {
			found++
		}
		if same {
			p.unconflicted[k] = v0
			continue
		}
		for j := range sets {
			if has[j] {
				add(k, vals[j], j)
			}
		}
	}
	// Keys missing from the first set are conflicted. When every other set
	// has exactly the keys of the first, there are none.
	extra := false
	for _, s := range sets[1:] {
		extra = extra || len(s) != found
	}
	if extra {
		for i, s := range sets[1:] {
			for k, v := range s {
				if _, ok := sets[0][k]; ok {
					continue
				}
				// Count the key once: at the first set that has it.
				first := true
				for _, o := range sets[1 : i+1] {
					if _, ok := o[k]; ok {
						first = false
						break
					}
				}
				if !first {
					continue
				}
				add(k, v, i+1)
				for j, o := range sets[i+2:] {
					if w, ok := o[k]; ok {
						add(k, w, i+2+j)
					}
				}
			}
		}
	}
	if len(sets) > 2 {
		// With more than two sets an event can be listed under its key
		// by several of them: merge those, keeping the sets that hold it.
		type entry struct {
			id string
			k  stateKey
		}
		at := make(map[entry]int, len(p.conflicted))
		n := 0
		for i, id := range p.conflicted {
			e := entry{id, p.keys[i]}
			if j, dup := at[e]; dup {
				if masks {
					p.in[j] |= p.in[i]
				}
				continue
			}
			at[e] = n
			p.conflicted[n], p.keys[n] = id, p.keys[i]
			if masks {
				p.in[n] = p.in[i]
			}
			n++
		}
		p.conflicted, p.keys = p.conflicted[:n], p.keys[:n]
		if masks {
			p.in = p.in[:n]
		}
	}
	return p
}

// resolveV2 runs state resolution v2, or v2.1 when the rules say so.
func (e *engine) resolveV2(ctx context.Context, sets []map[stateKey]string, index AuthChainIndex) (map[stateKey]string, error) {
	p := partition(sets)
	unconflicted, conflicted := p.unconflicted, p.conflicted
	if len(conflicted) == 0 {
		return unconflicted, nil
	}
	v21 := e.rules.StateResolution == roomversion.StateResV2_1
	g := e.g

	// The full conflicted set, by index (fcsAll may repeat an event).
	var fcsAll []int32
	var fcsIDs []string // with an index only
	if index != nil {
		ids := make([][]string, len(sets))
		for i, s := range sets {
			ids[i] = sortedValues(s)
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
	for _, i := range fcs {
		if _, err := g.authOf(ctx, i); err != nil {
			return nil, err
		}
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
			powerIDs[j] = g.nodes[i].id
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
		e.setBase(unconflicted)
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

	// Step 5: the unconflicted state map wins.
	out := make(map[stateKey]string, len(unconflicted)+len(st.byKey))
	if !v21 {
		for k, id := range e.base {
			out[k] = id
		}
	}
	for kid, k := range g.keys.list {
		if x := st.getKey(int32(kid)); x >= 0 {
			out[k] = g.nodes[x].id
		}
	}
	for k, id := range unconflicted {
		out[k] = id
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
		if r := e.g.nodes[i].roomID; r != "" {
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

func sortedValues(s map[stateKey]string) []string {
	out := make([]string, 0, len(s))
	for _, id := range s {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// fullConflictedSet computes the conflicted set plus the auth difference
// (plus, for v2.1, the conflicted state subgraph) by loading the auth chains
// of every event in the state sets, and returns their indices. It checks
// that every state set entry names an event of its key, as they are all
// loaded here.
func (e *engine) fullConflictedSet(ctx context.Context, sets []map[stateKey]string, p partitioned, v21 bool) ([]int32, error) {
	g := e.g
	// Every value of every set is an unconflicted or a conflicted event.
	all := make([]string, 0, len(p.unconflicted)+len(p.conflicted))
	keys := make([]stateKey, 0, cap(all))
	for k, id := range p.unconflicted {
		all = append(all, id)
		keys = append(keys, k)
	}
	all = append(all, p.conflicted...)
	keys = append(keys, p.keys...)
	roots, err := g.loadIndices(ctx, all)
	if err != nil {
		return nil, err
	}
	for j, i := range roots {
		if err := e.checkEntry(keys[j], i); err != nil {
			return nil, err
		}
	}
	e.entriesChecked = true
	if err := g.loadClosure(ctx, roots); err != nil {
		return nil, err
	}
	n := len(g.nodes)
	conflicted := roots[len(p.unconflicted):]

	// common marks the auth chains of the unconflicted events: they are in
	// every set's auth chain. The set is closed under auth edges, so walks
	// below can stop at it.
	common := make([]bool, n)
	var stack []int32
	for _, i := range roots[:len(p.unconflicted)] {
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
				if u, ok := p.unconflicted[k]; ok && u == id {
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
					return nil, fmt.Errorf("%w: at %s", ErrAuthCycle, g.nodes[a].id)
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

package stateres

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1" //nolint:gosec // state resolution v1 is defined with sha1(event_id)
	"slices"
)

// resolveV1 runs the original state resolution algorithm (room version 1).
//
// A conflict is a key that has different event IDs in the sets that have it;
// a key present in only some sets is not a conflict. R starts as the union of
// the sets without the conflicting keys. Power levels, then join rules, then
// member conflicts are resolved by walking the events in ascending depth,
// descending sha1(event_id) order while each one passes the auth rules
// against R; every other conflict takes the event with the highest depth and
// lowest sha1(event_id) that passes against R.
func (e *engine) resolveV1(ctx context.Context, sets []map[stateKey]string) (map[stateKey]string, error) {
	base := make(map[stateKey]string)
	conflicts := make(map[stateKey][]string)
	for _, s := range sets {
		for k, id := range s {
			if c, ok := conflicts[k]; ok {
				if !slices.Contains(c, id) {
					conflicts[k] = append(c, id)
				}
				continue
			}
			if prev, ok := base[k]; ok && prev != id {
				conflicts[k] = []string{prev, id}
				delete(base, k)
				continue
			}
			base[k] = id
		}
	}
	if len(conflicts) == 0 {
		return base, nil
	}
	e.setBase(base)
	keys := make([]stateKey, 0, len(conflicts))
	var ids []string
	for k, c := range conflicts {
		keys = append(keys, k)
		ids = append(ids, c...)
	}
	slices.SortFunc(keys, func(a, b stateKey) int {
		if c := cmp.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return cmp.Compare(a.StateKey, b.StateKey)
	})
	if err := e.g.ensure(ctx, ids); err != nil {
		return nil, err
	}
	st := &resolvedState{}
	sorted := func(k stateKey) []int32 {
		evs := make([]int32, 0, len(conflicts[k]))
		for _, id := range conflicts[k] {
			i, _ := e.g.index(id)
			evs = append(evs, i)
		}
		return sortV1(e.g, evs)
	}
	// resolveAuth walks one key's events; it leaves the winner set in st.
	resolveAuth := func(k stateKey) (int32, error) {
		evs := sorted(k)
		kid := e.g.nodes[evs[0]].key
		cur := evs[0]
		st.set(kid, cur)
		v := &authView{e: e, st: st, noFallback: true}
		for _, ev := range evs[1:] {
			v.ev = ev
			ok, err := e.check.allowed(ctx, v)
			if err != nil {
				return -1, err
			}
			if v.err != nil {
				return -1, v.err
			}
			if !ok {
				break
			}
			cur = ev
			st.set(kid, cur)
		}
		return cur, nil
	}
	for _, typ := range []string{typePowerLevels, typeJoinRules} {
		for _, k := range keys {
			if k.Type == typ {
				if _, err := resolveAuth(k); err != nil {
					return nil, err
				}
			}
		}
	}
	// Member conflicts are each resolved against the same R, and applied
	// together, so the result does not depend on the order of the keys.
	winners := make(map[int32]int32)
	for _, k := range keys {
		if k.Type != typeMember {
			continue
		}
		w, err := resolveAuth(k)
		if err != nil {
			return nil, err
		}
		kid := e.g.nodes[w].key
		winners[kid] = w
		st.set(kid, -1)
	}
	for kid, w := range winners {
		st.set(kid, w)
	}
	winners = make(map[int32]int32)
	v := &authView{e: e, st: st, noFallback: true}
	for _, k := range keys {
		if k.Type == typePowerLevels || k.Type == typeJoinRules || k.Type == typeMember {
			continue
		}
		evs := sorted(k)
		// Highest depth, lowest sha1 first: the reverse of the v1 order.
		slices.Reverse(evs)
		pick := evs[len(evs)-1]
		for _, ev := range evs {
			v.ev = ev
			ok, err := e.check.allowed(ctx, v)
			if err != nil {
				return nil, err
			}
			if v.err != nil {
				return nil, v.err
			}
			if ok {
				pick = ev
				break
			}
		}
		winners[e.g.nodes[pick].key] = pick
	}
	for kid, w := range winners {
		st.set(kid, w)
	}
	out := make(map[stateKey]string, len(base)+len(conflicts))
	for k, id := range base {
		out[k] = id
	}
	for kid, k := range e.g.keys.list {
		if x := st.getKey(int32(kid)); x >= 0 {
			out[k] = e.g.info[x].id
		}
	}
	return out, nil
}

// sortV1 sorts events by ascending depth, then descending sha1(event_id).
func sortV1(g *graph, evs []int32) []int32 {
	type item struct {
		ev    int32
		depth int64
		sum   [sha1.Size]byte
	}
	items := make([]item, len(evs))
	for i, ev := range evs {
		items[i] = item{ev: ev, depth: g.nodes[ev].depth, sum: sha1.Sum([]byte(g.info[ev].id))} //nolint:gosec
	}
	slices.SortFunc(items, func(a, b item) int {
		if c := cmp.Compare(a.depth, b.depth); c != 0 {
			return c
		}
		return -bytes.Compare(a.sum[:], b.sum[:])
	})
	out := make([]int32, len(items))
	for i := range items {
		out[i] = items[i].ev
	}
	return out
}

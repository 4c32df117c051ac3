package stateres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// powerHeap is a binary min-heap of local indices ordered by the reverse
// topological power ordering's comparison: greater sender power first, then
// smaller origin_server_ts, then smaller event ID.
type powerHeap struct {
	items []int32
	power []int64
	ts    []int64
	ids   []string
}

func (h *powerHeap) less(a, b int32) bool {
	if h.power[a] != h.power[b] {
		return h.power[a] > h.power[b]
	}
	if h.ts[a] != h.ts[b] {
		return h.ts[a] < h.ts[b]
	}
	return h.ids[a] < h.ids[b]
}

func (h *powerHeap) push(x int32) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *powerHeap) pop() int32 {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= last {
			break
		}
		m := l
		if r := l + 1; r < last && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}

// powerSort sorts the events xs (indices into g, auth events linked) into
// the reverse topological power ordering over the DAG their auth events
// form among themselves: Kahn's algorithm that always takes the smallest
// ready event. It fails with ErrAuthCycle if the auth events form a cycle.
func (e *engine) powerSort(ctx context.Context, xs []int32) ([]int32, error) {
	g := e.g
	// pos[x] is the position of node x in xs plus one, 0 if x is not in
	// xs; nodes loaded below (by senderPower) are not in xs.
	pos := make([]int32, len(g.nodes))
	for i, x := range xs {
		pos[x] = int32(i) + 1
	}
	local := func(a int32) int32 {
		if int(a) < len(pos) {
			return pos[a]
		}
		return 0
	}
	h := &powerHeap{
		power: make([]int64, len(xs)),
		ts:    make([]int64, len(xs)),
		ids:   make([]string, len(xs)),
		items: make([]int32, 0, len(xs)),
	}
	pending := make([]int32, len(xs))
	// Children in CSR form: for each local event, the local events that
	// cite it in their auth events.
	start := make([]int32, len(xs)+1)
	for i, x := range xs {
		p, err := e.check.senderPower(ctx, x)
		if err != nil {
			return nil, err
		}
		h.power[i] = p
		h.ts[i] = g.nodes[x].ts
		h.ids[i] = g.info[x].id
		for _, a := range g.nodes[x].auth {
			if la := local(a); la > 0 {
				pending[i]++
				start[la]++
			}
		}
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	children := make([]int32, start[len(xs)])
	fill := slices.Clone(start[:len(xs)])
	for i, x := range xs {
		for _, a := range g.nodes[x].auth {
			if la := local(a) - 1; la >= 0 {
				children[fill[la]] = int32(i)
				fill[la]++
			}
		}
	}
	for i := range xs {
		if pending[i] == 0 {
			h.push(int32(i))
		}
	}
	out := make([]int32, 0, len(xs))
	for len(h.items) > 0 {
		if len(out)&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		i := h.pop()
		out = append(out, xs[i])
		for _, c := range children[start[i]:start[i+1]] {
			pending[c]--
			if pending[c] == 0 {
				h.push(c)
			}
		}
	}
	if len(out) != len(xs) {
		return nil, fmt.Errorf("%w: %d of %d power events are on a cycle", ErrAuthCycle, len(xs)-len(out), len(xs))
	}
	return out, nil
}

// Mainline position markers in engine.mpos.
const (
	posUnknown  = -3
	posOnStack  = -2
	posInfinity = -1
)

// mainlinePositions computes the mainline of the power levels event pl and
// returns a function that gives the mainline position of an event
// (posInfinity when its power levels chain never meets the mainline).
// Positions of power levels events are memoised, so sorting N events costs
// O(N + length of the power levels history touched).
func (e *engine) mainlinePositions(ctx context.Context, pl int32) (func(ev int32) (int32, error), error) {
	memo := make(map[int32]int32)
	// The mainline itself: P0 = pl, P1, ... Its events get their own index.
	var mainline []int32
	for p := pl; p >= 0; {
		if _, dup := memo[p]; dup {
			return nil, fmt.Errorf("%w: power levels chain of %s", ErrAuthCycle, e.g.info[pl].id)
		}
		memo[p] = int32(len(mainline))
		mainline = append(mainline, p)
		next, err := e.g.plAuth(ctx, p)
		if err != nil {
			return nil, err
		}
		p = next
	}
	var path []int32
	position := func(ev int32) (int32, error) {
		// e1 is the power levels event in ev's auth events; e0 = ev itself
		// is not part of the list.
		p, err := e.g.plAuth(ctx, ev)
		if err != nil {
			return 0, err
		}
		path = path[:0]
		res := int32(posInfinity)
		for p >= 0 {
			if v, ok := memo[p]; ok {
				if v == posOnStack {
					return 0, fmt.Errorf("%w: power levels chain of %s", ErrAuthCycle, e.g.info[ev].id)
				}
				res = v
				break
			}
			memo[p] = posOnStack
			path = append(path, p)
			if p, err = e.g.plAuth(ctx, p); err != nil {
				return 0, err
			}
		}
		for _, q := range path {
			memo[q] = res
		}
		return res, nil
	}
	return position, nil
}

// mainlineSort orders evs by the mainline ordering based on pl (or, when pl
// is -1, with every position infinite): greater mainline position first
// (infinity greatest), then smaller origin_server_ts, then smaller event ID.
func (e *engine) mainlineSort(ctx context.Context, evs []int32, pl int32) ([]int32, error) {
	type item struct {
		ev  int32
		pos int64
		ts  int64
	}
	var position func(int32) (int32, error)
	if pl >= 0 {
		var err error
		if position, err = e.mainlinePositions(ctx, pl); err != nil {
			return nil, err
		}
	}
	items := make([]item, len(evs))
	for i, ev := range evs {
		pos := int64(1) << 62 // infinity
		if position != nil {
			p, err := position(ev)
			if err != nil {
				return nil, err
			}
			if p != posInfinity {
				pos = int64(p)
			}
		}
		items[i] = item{ev: ev, pos: pos, ts: e.g.nodes[ev].ts}
	}
	// Radix sort by (position descending, ts ascending), then order runs
	// of equal (position, ts) by event ID.
	byPos := make([]uint64, len(items))
	byTS := make([]uint64, len(items))
	for i, it := range items {
		byPos[i] = uint64(1<<62 - it.pos)
		byTS[i] = signedKey(it.ts)
	}
	order := radixOrder(len(items), byPos, byTS)
	for start := 0; start < len(order); {
		end := start + 1
		for end < len(order) && byPos[order[end]] == byPos[order[start]] && byTS[order[end]] == byTS[order[start]] {
			end++
		}
		if end-start > 1 {
			slices.SortFunc(order[start:end], func(a, b int32) int {
				return cmp.Compare(e.g.info[items[a].ev].id, e.g.info[items[b].ev].id)
			})
		}
		start = end
	}
	out := make([]int32, len(items))
	for i, j := range order {
		out[i] = items[j].ev
	}
	return out, nil
}

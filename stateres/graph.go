package stateres

import (
	"context"
	"fmt"
	"slices"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
)

// stateKey is a (type, state_key) pair.
type stateKey = eventauth.StateKey

// Event types the algorithm looks at.
const (
	typeCreate      = "m.room.create"
	typePowerLevels = "m.room.power_levels"
	typeJoinRules   = "m.room.join_rules"
	typeMember      = "m.room.member"
)

// node is one event, integer-indexed inside a graph. Only the fields the
// algorithm needs are kept; the full event stays with the caller.
type node struct {
	id         string
	roomID     string
	typ        string
	stateKey   string
	isState    bool
	sender     string
	membership string
	ts         int64
	depth      int64
	authIDs    []string
	// auth holds the indices of authIDs once resolved (authLoaded).
	auth       []int32
	authLoaded bool
	// closed: the whole auth chain of the node is loaded and linked.
	closed bool
	// key is the interned (type, state_key), -1 for non-state events.
	key      int32
	rejected bool
	// ext is the index of the caller-side object (the *event.PDU).
	ext int
}

// isPower reports whether n is a power event (spec: "Power events").
func (n *node) isPower() bool {
	if !n.isState {
		return false
	}
	switch n.typ {
	case typePowerLevels, typeJoinRules:
		return true
	case typeMember:
		return (n.membership == "leave" || n.membership == "ban") && n.sender != n.stateKey
	}
	return false
}

// fetchFunc adds the events with the given IDs, which are distinct and
// not in g, to g (through g.add or g.addMissing), and no other events. It
// returns an error wrapping ErrMissingEvent for an ID it cannot find.
type fetchFunc func(ctx context.Context, g *graph, ids []string) error

// graph holds the events loaded for one resolution, indexed by int32.
type graph struct {
	nodes []node
	byID  map[string]int32
	keys  map[stateKey]int32
	fetch fetchFunc
	// maxNodes bounds how many events one resolution may load.
	maxNodes int
}

// newGraph makes an empty graph; sizeHint is the expected number of events.
func newGraph(fetch fetchFunc, maxNodes, sizeHint int) *graph {
	return &graph{
		nodes:    make([]node, 0, sizeHint),
		byID:     make(map[string]int32, sizeHint),
		keys:     make(map[stateKey]int32, sizeHint/2),
		fetch:    fetch,
		maxNodes: maxNodes,
	}
}

// intern returns the key ID of k, adding it if needed.
func (g *graph) intern(k stateKey) int32 {
	if id, ok := g.keys[k]; ok {
		return id
	}
	id := int32(len(g.keys))
	g.keys[k] = id
	return id
}

// add inserts n (unless an event with its ID is present) and returns its index.
func (g *graph) add(n node) (int32, error) {
	if i, ok := g.byID[n.id]; ok {
		return i, nil
	}
	return g.addMissing(n)
}

// addMissing is add for an event known not to be in the graph: one that
// ensure asked the fetch function for.
func (g *graph) addMissing(n node) (int32, error) {
	if g.maxNodes > 0 && len(g.nodes) >= g.maxNodes {
		return -1, fmt.Errorf("%w: more than %d events", ErrTooManyEvents, g.maxNodes)
	}
	if n.isState {
		n.key = g.intern(stateKey{Type: n.typ, StateKey: n.stateKey})
	} else {
		n.key = -1
	}
	i := int32(len(g.nodes))
	g.nodes = append(g.nodes, n)
	g.byID[n.id] = i
	return i, nil
}

// ensure loads every ID in ids that is not in the graph yet.
func (g *graph) ensure(ctx context.Context, ids []string) error {
	var missing []string
	var seen map[string]struct{}
	empty := len(g.nodes) == 0 // nothing to look up
	for _, id := range ids {
		if !empty {
			if _, ok := g.byID[id]; ok {
				continue
			}
		}
		if _, ok := seen[id]; ok {
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{}, len(ids))
		}
		seen[id] = struct{}{}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	before := len(g.nodes)
	if err := g.fetch(ctx, g, missing); err != nil {
		return err
	}
	if len(g.nodes)-before == len(missing) {
		// The fetch added exactly the missing events (fetch functions add
		// only events they were asked for, each once).
		return nil
	}
	for _, id := range missing {
		if _, ok := g.byID[id]; !ok {
			return fmt.Errorf("%w: %s", ErrMissingEvent, id)
		}
	}
	return nil
}

// loadDistinct loads ids, which should be distinct, and returns their
// indices in the same order.
func (g *graph) loadDistinct(ctx context.Context, ids []string) ([]int32, error) {
	before := len(g.nodes)
	fresh := before == 0
	// ids may repeat after all when the caller's input is malformed (an
	// event under two state keys), so ensure filters repeats.
	if err := g.ensure(ctx, ids); err != nil {
		return nil, err
	}
	out := make([]int32, len(ids))
	if fresh && len(g.nodes) == len(ids) {
		// Loaded in order into an empty graph: ids[i] is node i, unless
		// the fetch function reordered them.
		ok := true
		for i := range out {
			out[i] = int32(i)
			if g.nodes[i].id != ids[i] {
				ok = false
				break
			}
		}
		if ok {
			return out, nil
		}
	}
	for i, id := range ids {
		out[i] = g.byID[id]
	}
	return out, nil
}

// index returns the index of a loaded event ID.
func (g *graph) index(id string) (int32, bool) {
	i, ok := g.byID[id]
	return i, ok
}

// authOf returns the indices of the auth events of node i, loading them if
// needed.
func (g *graph) authOf(ctx context.Context, i int32) ([]int32, error) {
	if g.nodes[i].authLoaded {
		return g.nodes[i].auth, nil
	}
	if err := g.ensure(ctx, g.nodes[i].authIDs); err != nil {
		return nil, err
	}
	g.link(i)
	return g.nodes[i].auth, nil
}

// link resolves the auth IDs of node i to indices; all must be loaded.
func (g *graph) link(i int32) {
	n := &g.nodes[i]
	if n.authLoaded {
		return
	}
	auth := make([]int32, 0, len(n.authIDs))
	for _, id := range n.authIDs {
		j := g.byID[id]
		dup := false
		for _, k := range auth {
			if k == j {
				dup = true
				break
			}
		}
		if !dup {
			auth = append(auth, j)
		}
	}
	g.nodes[i].auth = auth
	g.nodes[i].authLoaded = true
}

// loadClosure loads the full auth chains of roots, level by level in
// batches, and links every node reached.
func (g *graph) loadClosure(ctx context.Context, roots []int32) error {
	var frontier []int32
	for _, i := range roots {
		if !g.nodes[i].closed {
			g.nodes[i].closed = true
			frontier = append(frontier, i)
		}
	}
	for len(frontier) > 0 {
		// Resolve the auth IDs already loaded, and fetch the others.
		var want []string
		total := 0
		for _, i := range frontier {
			total += len(g.nodes[i].authIDs)
		}
		arena := make([]int32, total)
		for _, i := range frontier {
			n := &g.nodes[i]
			if n.authLoaded {
				continue
			}
			auth := arena[:len(n.authIDs):len(n.authIDs)]
			arena = arena[len(n.authIDs):]
			for j, id := range n.authIDs {
				if a, ok := g.byID[id]; ok {
					auth[j] = a
				} else {
					auth[j] = -1
					want = append(want, id)
				}
			}
			n.auth = auth
		}
		if err := g.ensure(ctx, want); err != nil {
			return err
		}
		var next []int32
		for _, i := range frontier {
			n := &g.nodes[i]
			if !n.authLoaded {
				auth := n.auth[:0]
				for j, a := range n.auth {
					if a < 0 {
						a = g.byID[n.authIDs[j]]
					}
					if !slices.Contains(auth, a) {
						auth = append(auth, a)
					}
				}
				n.auth = auth
				n.authLoaded = true
			}
			for _, a := range n.auth {
				if !g.nodes[a].closed {
					g.nodes[a].closed = true
					next = append(next, a)
				}
			}
		}
		frontier = next
	}
	return nil
}

// authByKey returns the first non-rejected auth event of node i with key k,
// or -1. Auth events of i must be linked.
func (g *graph) authByKey(i int32, typ, sk string) int32 {
	for _, a := range g.nodes[i].auth {
		an := &g.nodes[a]
		if an.isState && an.typ == typ && an.stateKey == sk && !an.rejected {
			return a
		}
	}
	return -1
}

// plAuth returns the m.room.power_levels event among the auth events of
// node i (rejected or not, as the spec's mainline and power ordering
// definitions do not exclude them), or -1.
func (g *graph) plAuth(ctx context.Context, i int32) (int32, error) {
	auth, err := g.authOf(ctx, i)
	if err != nil {
		return -1, err
	}
	for _, a := range auth {
		an := &g.nodes[a]
		if an.isState && an.typ == typePowerLevels && an.stateKey == "" {
			return a, nil
		}
	}
	return -1, nil
}

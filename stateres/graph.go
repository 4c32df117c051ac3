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

// fetched is an event as a fetch function hands it to the graph
// (addFetched). Only the fields the algorithm needs are taken; the full
// event stays with the caller.
type fetched struct {
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
	rejected   bool
	// ext is the index of the caller-side object (the *event.PDU).
	ext int
}

// node is one event, integer-indexed inside a graph: what the algorithm's
// loops read (the rest is in the graph's info).
type node struct {
	ts    int64
	depth int64
	// auth holds the indices of the auth events once resolved
	// (authLoaded).
	auth []int32
	ext  int
	// key is the interned (type, state_key), -1 for non-state events.
	key        int32
	isState    bool
	authLoaded bool
	// closed: the whole auth chain of the node is loaded and linked.
	closed   bool
	rejected bool
	// power: a power event (set when the node is added).
	power bool
}

// nodeInfo is the rest of what the graph keeps of node i, in g.info[i]:
// read when loading, in ties and in error messages.
type nodeInfo struct {
	id      string
	roomID  string
	typ     string
	authIDs []string
	// refs[j] is the byID entry of authIDs[j], entered when the node is
	// added (while its event is being read anyway), so that linking the
	// node later reads integers, not the ID strings again.
	refs []int32
}

// isPower reports whether n is a power event (spec: "Power events").
// Nodes in a graph have it in node.power.
func (n *fetched) isPower() bool {
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
// not in g, to g (through g.addFetched(k, ...) for ids[k]), and no other
// events. It returns an error wrapping ErrMissingEvent for an ID
// it cannot find.
type fetchFunc func(ctx context.Context, g *graph, ids []string) error

// graph holds the events loaded for one resolution, indexed by int32.
type graph struct {
	nodes []node
	info  []nodeInfo // info[i] goes with nodes[i]
	// byID maps event IDs to node indices, or to pending or wanted for
	// events not loaded yet.
	byID  *idTable
	keys  *keyTable
	fetch fetchFunc
	// refBuf is the unused part of the current chunk that nodeInfo.refs
	// and node.auth slices are cut from.
	refBuf []int32
	// batch[k] is the byID entry of batchIDs[k], the IDs of the current
	// fetch.
	batch    []int32
	batchIDs []string
	// maxNodes bounds how many events one resolution may load.
	maxNodes int
}

// newGraph makes an empty graph; sizeHint is the expected number of events.
func newGraph(fetch fetchFunc, maxNodes, sizeHint int) *graph {
	return &graph{
		nodes:    make([]node, 0, sizeHint),
		info:     make([]nodeInfo, 0, sizeHint),
		byID:     newIDTable(sizeHint, 44),
		keys:     newKeyTable(sizeHint / 2),
		fetch:    fetch,
		maxNodes: maxNodes,
	}
}

// reserve makes room for n more events, within the graph's event limit
// (a provider's long answer must not make us allocate beyond it).
func (g *graph) reserve(n int) {
	if g.maxNodes > 0 {
		n = min(n, g.maxNodes-len(g.nodes))
	}
	if n <= 0 {
		return
	}
	g.nodes = slices.Grow(g.nodes, n)
	g.info = slices.Grow(g.info, n)
	g.byID.reserve(n, 44)
}

// intern returns the key ID of k, adding it if needed.
func (g *graph) intern(k stateKey) int32 {
	id, _ := g.keys.intern(k)
	return id
}

// keyID returns the key ID of (typ, sk), or -1 when no loaded event has
// that key.
func (g *graph) keyID(typ, sk string) int32 {
	if sk == "" {
		switch typ {
		case typeCreate:
			return g.keys.createKey
		case typePowerLevels:
			return g.keys.plKey
		case typeJoinRules:
			return g.keys.joinRulesKey
		}
	}
	return g.keys.find(typ, sk)
}

// place appends f as the next node, interning its key and entering its
// auth event IDs in byID (as wanted when they are not loaded yet).
func (g *graph) place(f fetched) {
	n := node{ts: f.ts, depth: f.depth, ext: f.ext, key: -1, isState: f.isState, rejected: f.rejected, power: f.isPower()}
	if f.isState {
		n.key = g.intern(stateKey{Type: f.typ, StateKey: f.stateKey})
	}
	refs := g.cut(len(f.authIDs))
	for j, id := range f.authIDs {
		refs[j], _ = g.byID.insert(id, wanted)
	}
	g.nodes = append(g.nodes, n)
	g.info = append(g.info, nodeInfo{id: f.id, roomID: f.roomID, typ: f.typ, authIDs: f.authIDs, refs: refs})
}

// cut returns a slice of n int32s (its capacity n) from the graph's
// chunks, so that nodes do not need an allocation each.
func (g *graph) cut(n int) []int32 {
	if n > len(g.refBuf) {
		g.refBuf = make([]int32, max(n, 4096))
	}
	out := g.refBuf[:n:n]
	g.refBuf = g.refBuf[n:]
	return out
}

// byID values of events not loaded yet: pending while a fetch is asked
// for it, wanted when loadClosure has seen it cited and not asked yet.
const (
	pending = -1
	wanted  = -2
)

// addFetched adds the event a fetch function was asked for as ids[k] and
// returns its index. The graph knows its entry, so nothing is looked up;
// an event with another ID is an error.
func (g *graph) addFetched(k int, n fetched) (int32, error) {
	if k < 0 || k >= len(g.batch) {
		return -1, fmt.Errorf("%w: provider returned %s, which was not asked for", ErrBadInput, n.id)
	}
	e := g.batch[k]
	if n.id != g.batchIDs[k] {
		return -1, fmt.Errorf("%w: provider returned %s for %s", ErrBadInput, n.id, g.byID.key(e))
	}
	if v := g.byID.vals[e]; v >= 0 {
		return v, nil
	}
	if g.maxNodes > 0 && len(g.nodes) >= g.maxNodes {
		return -1, fmt.Errorf("%w: more than %d events", ErrTooManyEvents, g.maxNodes)
	}
	i := int32(len(g.nodes))
	g.byID.vals[e] = i
	g.place(n)
	return i, nil
}

// ensure loads every ID in ids that is not in the graph yet.
func (g *graph) ensure(ctx context.Context, ids []string) error {
	missing := make([]string, 0, len(ids))
	g.batch = g.batch[:0]
	for _, id := range ids {
		// An ID to fetch is marked pending, so a repeat of it in ids is
		// not fetched twice.
		e, added := g.byID.insert(id, pending)
		if added || g.byID.vals[e] == wanted {
			g.byID.vals[e] = pending
			missing = append(missing, id)
			g.batch = append(g.batch, e)
		}
	}
	return g.fetchBatch(ctx, missing)
}

// loadEntries loads the events of ids, entered in byID already (entries[i]
// is the entry of ids[i]), and returns their indices in the same order.
func (g *graph) loadEntries(ctx context.Context, ids []string, entries []int32) ([]int32, error) {
	var missing []string
	var at []int32 // at[j]: the position in ids of missing[j]
	for i, e := range entries {
		if g.byID.vals[e] == wanted {
			g.byID.vals[e] = pending
			missing = append(missing, ids[i])
			at = append(at, int32(i))
		}
	}
	g.batch = g.batch[:0]
	for _, i := range at {
		g.batch = append(g.batch, entries[i])
	}
	if err := g.fetchBatch(ctx, missing); err != nil {
		return nil, err
	}
	out := make([]int32, len(entries))
	for i, e := range entries {
		out[i] = g.byID.vals[e]
	}
	return out, nil
}

// fetchBatch fetches missing, whose entries are in g.batch.
func (g *graph) fetchBatch(ctx context.Context, missing []string) error {
	g.batchIDs = missing
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
	for k, id := range missing {
		if g.byID.vals[g.batch[k]] < 0 {
			return fmt.Errorf("%w: %s", ErrMissingEvent, id)
		}
	}
	return nil
}

// index returns the index of a loaded event ID.
func (g *graph) index(id string) (int32, bool) {
	i, ok := g.byID.get(id)
	return i, ok && i >= 0
}

// authOf returns the indices of the auth events of node i, loading them if
// needed.
func (g *graph) authOf(ctx context.Context, i int32) ([]int32, error) {
	if g.nodes[i].authLoaded {
		return g.nodes[i].auth, nil
	}
	if err := g.loadAuth(ctx, []int32{i}); err != nil {
		return nil, err
	}
	return g.nodes[i].auth, nil
}

// loadAuth fetches the auth events of the nodes xs that are not loaded
// yet, in one batch, and links the nodes.
func (g *graph) loadAuth(ctx context.Context, xs []int32) error {
	var want []string
	g.batch = g.batch[:0]
	for _, i := range xs {
		if g.nodes[i].authLoaded {
			continue
		}
		in := &g.info[i]
		for j, e := range in.refs {
			// An event to fetch is marked pending, so that another
			// reference to it is not fetched twice.
			if g.byID.vals[e] == wanted {
				g.byID.vals[e] = pending
				want = append(want, in.authIDs[j])
				g.batch = append(g.batch, e)
			}
		}
	}
	if err := g.fetchBatch(ctx, want); err != nil {
		return err
	}
	for _, i := range xs {
		if err := g.link(i); err != nil {
			return err
		}
	}
	return nil
}

// link resolves the auth references of node i to node indices, dropping
// repeats; all must be loaded.
func (g *graph) link(i int32) error {
	n := &g.nodes[i]
	if n.authLoaded {
		return nil
	}
	in := &g.info[i]
	auth := g.cut(len(in.refs))[:0]
	for j, e := range in.refs {
		a := g.byID.vals[e]
		if a < 0 {
			return fmt.Errorf("%w: %s", ErrMissingEvent, in.authIDs[j])
		}
		if !slices.Contains(auth, a) {
			auth = append(auth, a)
		}
	}
	n.auth = auth
	n.authLoaded = true
	return nil
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
	var next []int32
	for len(frontier) > 0 {
		if err := g.loadAuth(ctx, frontier); err != nil {
			return err
		}
		next = next[:0]
		for _, i := range frontier {
			for _, a := range g.nodes[i].auth {
				if !g.nodes[a].closed {
					g.nodes[a].closed = true
					next = append(next, a)
				}
			}
		}
		frontier, next = next, frontier
	}
	return nil
}

// authByKey returns the first non-rejected auth event of node i with key
// ID k, or -1. Auth events of i must be linked.
func (g *graph) authByKey(i int32, k int32) int32 {
	for _, a := range g.nodes[i].auth {
		an := &g.nodes[a]
		if an.key == k && !an.rejected {
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
	if g.keys.plKey < 0 {
		return -1, nil
	}
	for _, a := range auth {
		if g.nodes[a].key == g.keys.plKey {
			return a, nil
		}
	}
	return -1, nil
}

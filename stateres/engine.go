package stateres

import (
	"context"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// checker is the seam between the ordering logic and the authorization
// rules. The real one wraps eventauth.Check; tests plug in small fakes.
type checker interface {
	// allowed reports whether the event v.ev passes the authorization
	// rules against the state v shows. An error means the resolution
	// cannot continue (for example a missing event), not a rejection.
	allowed(ctx context.Context, v *authView) (bool, error)
	// senderPower returns the power level of the sender of ev as its own
	// auth events give it (for the reverse topological power ordering).
	senderPower(ctx context.Context, ev int32) (int64, error)
}

// engine runs one resolution.
type engine struct {
	rules roomversion.Rules
	g     *graph
	check checker
	// create is the room's create event when the room version no longer
	// lists it in auth_events (room ID derived from the create event), or -1.
	create int32
	// The lazily loaded starting state: base (v1), or the unconflicted
	// entries of basePart by key ID (v2); set with setBase or
	// setBasePartition. baseAt[k] caches the base event of key ID k: 0 not
	// looked up yet, -1 none, else the node index + 1.
	base     map[stateKey]string
	basePart *partitioned
	baseAt   []int32
	// entriesChecked: every state set entry was checked against its
	// event's key while loading (checkEntry).
	entriesChecked bool
}

// checkEntry reports an error if the loaded event i is not a state event
// of key k.
// kid is k's key ID (-1 if k is not interned).
func (e *engine) checkEntry(kid int32, k stateKey, i int32) error {
	if kid < 0 || e.g.nodes[i].key != kid {
		in := &e.g.info[i]
		return fmt.Errorf("%w: state entry (%s, %q) names %s of type %s", ErrBadInput, k.Type, k.StateKey, in.id, in.typ)
	}
	return nil
}

// resolvedState is a partially resolved state: entries set by the
// iterative auth checks, over the engine's lazily loaded base map.
type resolvedState struct {
	byKey []int32
}

func (s *resolvedState) set(k, v int32) {
	for int(k) >= len(s.byKey) {
		s.byKey = append(s.byKey, -1)
	}
	s.byKey[k] = v
}

func (s *resolvedState) getKey(k int32) int32 {
	if int(k) < len(s.byKey) {
		return s.byKey[k]
	}
	return -1
}

// authView is what one auth check sees: the partially resolved state and,
// for keys it lacks, the checked event's own non-rejected auth events.
type authView struct {
	e  *engine
	st *resolvedState
	ev int32
	// noFallback disables the auth-events fallback (state resolution v1
	// checks against the partial state R only).
	noFallback bool
	err        error
}

// get returns the event for (typ, sk) as the auth check should see it, or
// -1. Loading errors are kept in v.err.
func (v *authView) get(ctx context.Context, typ, sk string) int32 {
	e := v.e
	kid := e.g.keyID(typ, sk)
	if kid >= 0 {
		if x := v.st.getKey(kid); x >= 0 {
			return x
		}
	}
	if len(e.base) > 0 || e.basePart != nil {
		x, err := e.baseEvent(ctx, kid, typ, sk)
		if err != nil {
			v.err = err
			return -1
		}
		if x >= 0 {
			return x
		}
	}
	if !v.noFallback {
		if _, err := e.g.authOf(ctx, v.ev); err != nil {
			v.err = err
			return -1
		}
		if kid < 0 {
			// Loading the auth events may have added the key.
			kid = e.g.keyID(typ, sk)
		}
		if kid >= 0 {
			if a := e.g.authByKey(v.ev, kid); a >= 0 {
				return a
			}
		}
	}
	if typ == typeCreate && sk == "" && e.create >= 0 {
		return e.create
	}
	return -1
}

// setBase sets the starting state the auth checks see under the partial
// state.
func (e *engine) setBase(base map[stateKey]string) {
	e.base, e.basePart = base, nil
	e.baseAt = e.baseAt[:0]
}

// setBasePartition sets the unconflicted state map of p as the starting
// state the auth checks see under the partial state.
func (e *engine) setBasePartition(p *partitioned) {
	e.base, e.basePart = nil, p
	e.baseAt = e.baseAt[:0]
}

// baseEvent returns the event the base state has for (typ, sk), whose key
// ID is kid (or -1), loading it if needed; -1 if the base has none. Answers
// are kept per key ID.
func (e *engine) baseEvent(ctx context.Context, kid int32, typ, sk string) (int32, error) {
	if kid >= 0 && int(kid) < len(e.baseAt) {
		switch c := e.baseAt[kid]; {
		case c < 0:
			return -1, nil
		case c > 0:
			return c - 1, nil
		}
	}
	x := int32(-1)
	var id string
	var ok bool
	if p := e.basePart; p != nil {
		// Every key of the state sets has a key ID.
		if ok = p.unconflicted(kid); ok {
			id = p.uIDs[p.uAt[kid]]
		}
	} else {
		id, ok = e.base[stateKey{Type: typ, StateKey: sk}]
	}
	if ok {
		var loaded bool
		if x, loaded = e.g.index(id); !loaded {
			if err := e.g.ensure(ctx, []string{id}); err != nil {
				return -1, err
			}
			x, _ = e.g.index(id)
		}
	}
	if kid >= 0 {
		for int(kid) >= len(e.baseAt) {
			e.baseAt = append(e.baseAt, 0)
		}
		e.baseAt[kid] = -1
		if x >= 0 {
			e.baseAt[kid] = x + 1
		}
	}
	return x, nil
}

// iterate runs the iterative auth checks over list, updating st.
func (e *engine) iterate(ctx context.Context, st *resolvedState, list []int32, noFallback bool) error {
	v := &authView{e: e, st: st, noFallback: noFallback}
	for i, ev := range list {
		if i&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		n := &e.g.nodes[ev]
		if !n.isState {
			continue
		}
		v.ev = ev
		v.err = nil
		ok, err := e.check.allowed(ctx, v)
		if err != nil {
			return err
		}
		if v.err != nil {
			return v.err
		}
		if ok {
			st.set(n.key, ev)
		}
	}
	return nil
}

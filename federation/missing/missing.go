package missing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/tidwall/gjson"
)

// Defaults of [Limits].
const (
	DefaultPerRequest = 20
	DefaultMaxEvents  = 200
	DefaultMaxRounds  = 5
	DefaultTimeout    = 60 * time.Second
	// DefaultMaxState bounds the state of one /state_ids answer.
	DefaultMaxState = 100_000
	// DefaultMaxFetches bounds the /event requests of one Fetch; more
	// missing events switch to one /state request.
	DefaultMaxFetches = 50
)

// Sentinels.
var (
	ErrNoServer    = errors.New("missing: no server answered")
	ErrBadResponse = errors.New("missing: bad response")
	ErrTooLarge    = errors.New("missing: answer over the limits")
)

// Client is the part of *federation.Client these helpers call.
type Client interface {
	GetMissingEvents(ctx context.Context, destination, roomID string, earliest, latest []string, limit int) (json.RawMessage, error)
	StateIDs(ctx context.Context, destination, roomID, eventID string) (json.RawMessage, error)
	GetEvent(ctx context.Context, destination, eventID string) (json.RawMessage, error)
	State(ctx context.Context, destination, roomID, eventID string) (json.RawMessage, error)
}

// Known reports which of ids we already have (accepted, rejected or
// outliers), in order.
type Known func(ctx context.Context, ids []string) ([]bool, error)

// Limits bound a Walk or a Fetch; zero fields mean the defaults.
type Limits struct {
	// PerRequest is the limit of each get_missing_events request.
	PerRequest int
	// MaxEvents bounds the events one Walk returns.
	MaxEvents int
	// MaxRounds bounds the get_missing_events rounds (how deep a Walk
	// goes) per server.
	MaxRounds int
	// Timeout bounds a whole Walk or Fetch.
	Timeout time.Duration
	// MaxState bounds the state entries and auth chain IDs of a Fetch.
	MaxState int
	// MaxFetches bounds the /event requests of a Fetch.
	MaxFetches int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.PerRequest, DefaultPerRequest)
	def(&l.MaxEvents, DefaultMaxEvents)
	def(&l.MaxRounds, DefaultMaxRounds)
	def(&l.MaxState, DefaultMaxState)
	def(&l.MaxFetches, DefaultMaxFetches)
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// WalkRequest describes a gap.
type WalkRequest struct {
	Rules roomversion.Rules
	// Event is the event whose prev events we lack.
	Event *event.PDU
	// Earliest are events we have (our forward extremities).
	Earliest []string
	// Servers are asked in order until one fills the gap.
	Servers []string
	Known   Known
	Limits  Limits
}

// WalkResult is what a Walk found.
type WalkResult struct {
	// Events are the events found, parsed but unchecked, oldest first
	// (by depth, then event ID).
	Events []*event.PDU
	// Missing are prev events still unknown (of Event or of Events).
	Missing []string
	// Server is the server whose answers were used ("" if none).
	Server string
	// Skipped counts events left out (malformed, of another room, over
	// the limits).
	Skipped int
}

// Walk asks for the events between req.Earliest and req.Event. With each
// server in turn it runs get_missing_events rounds (latest_events: the
// events whose prev events are still missing; earliest_events: what we
// have and what it found) until no prev event is missing, or a limit is
// reached; then it returns what it found with the server that filled the
// most. Errors: [ErrNoServer] (wrapping the last server's error) when no
// server answered, the context's error.
func Walk(ctx context.Context, c Client, req WalkRequest) (*WalkResult, error) {
	lim := req.Limits.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	var best *WalkResult
	var lastErr error
	for _, server := range req.Servers {
		res, err := walkServer(ctx, c, req, lim, server)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if best == nil || len(res.Missing) < len(best.Missing) || (len(res.Missing) == len(best.Missing) && len(res.Events) > len(best.Events)) {
			best = res
		}
		if len(res.Missing) == 0 {
			break
		}
	}
	if best == nil {
		if lastErr == nil {
			lastErr = errors.New("no servers given")
		}
		return nil, fmt.Errorf("%w: %w", ErrNoServer, lastErr)
	}
	return best, nil
}

func walkServer(ctx context.Context, c Client, req WalkRequest, lim Limits, server string) (*WalkResult, error) {
	roomID := req.Event.RoomID()
	res := &WalkResult{Server: server}
	found := map[string]*event.PDU{req.Event.EventID(): req.Event}
	earliest := slices.Clone(req.Earliest)
	latest := []string{req.Event.EventID()}
	answered := false
	for round := 0; round < lim.MaxRounds && len(found)-1 < lim.MaxEvents; round++ {
		limit := min(lim.PerRequest, lim.MaxEvents-(len(found)-1))
		raw, err := c.GetMissingEvents(ctx, server, roomID, earliest, latest, limit)
		if err != nil {
			if answered {
				break
			}
			return nil, err
		}
		answered = true
		list := gjson.GetBytes(raw, "events")
		if !list.IsArray() {
			if round == 0 {
				return nil, fmt.Errorf("%w: no events list from %s", ErrBadResponse, server)
			}
			break
		}
		n, added := 0, 0
		list.ForEach(func(_, v gjson.Result) bool {
			n++
			if n > limit {
				res.Skipped++
				return true
			}
			ev, err := event.Parse(req.Rules, []byte(v.Raw))
			if err != nil || ev.RoomID() != roomID {
				res.Skipped++
				return true
			}
			if _, dup := found[ev.EventID()]; !dup {
				found[ev.EventID()] = ev
				added++
			}
			return true
		})
		missing, err := missingPrevs(ctx, req.Known, found)
		if err != nil {
			return nil, err
		}
		res.Missing = missing
		if len(missing) == 0 || added == 0 {
			break
		}
		// Next round: from the events whose prev events are missing.
		latest = latest[:0]
		for id, ev := range found {
			for _, p := range ev.PrevEventIDs() {
				if slices.Contains(missing, p) {
					latest = append(latest, id)
					break
				}
			}
		}
		slices.Sort(latest)
		earliest = slices.Clone(req.Earliest)
		for id := range found {
			earliest = append(earliest, id)
		}
		slices.Sort(earliest[len(req.Earliest):])
	}
	if res.Missing == nil {
		missing, err := missingPrevs(ctx, req.Known, found)
		if err != nil {
			return nil, err
		}
		res.Missing = missing
	}
	delete(found, req.Event.EventID())
	for _, ev := range found {
		res.Events = append(res.Events, ev)
	}
	slices.SortFunc(res.Events, func(a, b *event.PDU) int {
		if a.Depth() != b.Depth() {
			return int(max(-1, min(1, a.Depth()-b.Depth())))
		}
		if a.EventID() < b.EventID() {
			return -1
		}
		return 1
	})
	return res, nil
}

// missingPrevs returns the prev events of found that are neither found
// nor known, sorted.
func missingPrevs(ctx context.Context, known Known, found map[string]*event.PDU) ([]string, error) {
	var cand []string
	seen := map[string]bool{}
	for _, ev := range found {
		for _, p := range ev.PrevEventIDs() {
			if found[p] == nil && !seen[p] {
				seen[p] = true
				cand = append(cand, p)
			}
		}
	}
	slices.Sort(cand)
	if len(cand) == 0 {
		return []string{}, nil
	}
	have, err := known(ctx, cand)
	if err != nil {
		return nil, err
	}
	if len(have) != len(cand) {
		return nil, fmt.Errorf("missing: Known returned %d answers for %d IDs", len(have), len(cand))
	}
	out := []string{}
	for i, id := range cand {
		if !have[i] {
			out = append(out, id)
		}
	}
	return out, nil
}

// FetchRequest asks for the state at an event.
type FetchRequest struct {
	Rules  roomversion.Rules
	RoomID string
	// EventID is the event whose state is wanted.
	EventID string
	Server  string
	// Have returns the events we already have (nil for unknown ones), in
	// order; they are not fetched again.
	Have   func(ctx context.Context, ids []string) ([]*event.PDU, error)
	Limits Limits
}

// FetchResult is the state before an event, as a server gave it.
type FetchResult struct {
	// State maps each entry of the state before EventID to its event ID.
	State map[eventauth.StateKey]string
	// AuthChainIDs are the IDs of the state's auth chain.
	AuthChainIDs []string
	// Fetched are the events we did not have, parsed but unchecked.
	Fetched []*event.PDU
}

// Fetch gets the state before an event from a server: /state_ids, then
// the events we lack, one /event each while they are few (Limits.MaxFetches),
// else one /state. Every state event must be known or fetched, of the
// room, and a state event of the key the state lists; else the result is
// an error wrapping [ErrBadResponse]. Answers over Limits.MaxState wrap
// [ErrTooLarge].
func Fetch(ctx context.Context, c Client, req FetchRequest) (*FetchResult, error) {
	lim := req.Limits.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	raw, err := c.StateIDs(ctx, req.Server, req.RoomID, req.EventID)
	if err != nil {
		return nil, err
	}
	body := gjson.ParseBytes(raw)
	pduIDs, chainIDs := body.Get("pdu_ids"), body.Get("auth_chain_ids")
	if !pduIDs.IsArray() || !chainIDs.IsArray() {
		return nil, fmt.Errorf("%w: state_ids answer without pdu_ids and auth_chain_ids", ErrBadResponse)
	}
	ids, err := stringList(pduIDs, lim.MaxState)
	if err != nil {
		return nil, err
	}
	res := &FetchResult{State: make(map[eventauth.StateKey]string, len(ids))}
	if res.AuthChainIDs, err = stringList(chainIDs, lim.MaxState); err != nil {
		return nil, err
	}
	have, err := req.Have(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(have) != len(ids) {
		return nil, fmt.Errorf("missing: Have returned %d events for %d IDs", len(have), len(ids))
	}
	events := map[string]*event.PDU{}
	var lack []string
	for i, id := range ids {
		if have[i] != nil {
			events[id] = have[i]
		} else {
			lack = append(lack, id)
		}
	}
	add := func(raw []byte) {
		ev, err := event.Parse(req.Rules, raw)
		if err != nil || ev.RoomID() != req.RoomID {
			return
		}
		if _, ok := events[ev.EventID()]; !ok {
			events[ev.EventID()] = ev
			res.Fetched = append(res.Fetched, ev)
		}
	}
	if len(lack) > lim.MaxFetches {
		raw, err := c.State(ctx, req.Server, req.RoomID, req.EventID)
		if err != nil {
			return nil, err
		}
		st := gjson.ParseBytes(raw)
		n := 0
		var tooMany bool
		for _, k := range []string{"pdus", "auth_chain"} {
			st.Get(k).ForEach(func(_, v gjson.Result) bool {
				n++
				if n > 2*lim.MaxState {
					tooMany = true
					return false
				}
				add([]byte(v.Raw))
				return true
			})
		}
		if tooMany {
			return nil, fmt.Errorf("%w: /state answer with more than %d events", ErrTooLarge, 2*lim.MaxState)
		}
	} else {
		for _, id := range lack {
			raw, err := c.GetEvent(ctx, req.Server, id)
			if err != nil {
				return nil, fmt.Errorf("missing: fetching %s: %w", id, err)
			}
			add(raw)
		}
	}
	for _, id := range ids {
		ev := events[id]
		if ev == nil {
			return nil, fmt.Errorf("%w: state event %s not obtained", ErrBadResponse, id)
		}
		sk, ok := ev.StateKey()
		if !ok {
			return nil, fmt.Errorf("%w: %s in the state has no state_key", ErrBadResponse, id)
		}
		k := eventauth.StateKey{Type: ev.Type(), StateKey: sk}
		if other, dup := res.State[k]; dup {
			return nil, fmt.Errorf("%w: the state has (%s, %q) twice: %s and %s", ErrBadResponse, k.Type, k.StateKey, other, id)
		}
		res.State[k] = id
	}
	return res, nil
}

func stringList(v gjson.Result, max int) ([]string, error) {
	var out []string
	var err error
	v.ForEach(func(_, s gjson.Result) bool {
		if len(out) == max {
			err = fmt.Errorf("%w: more than %d IDs", ErrTooLarge, max)
			return false
		}
		if s.Type != gjson.String || len(s.Str) > event.MaxFieldBytes {
			err = fmt.Errorf("%w: %s is not an event ID", ErrBadResponse, s.Raw)
			return false
		}
		out = append(out, s.Str)
		return true
	})
	return out, err
}

// StateAfter returns the state after an event given the state before it:
// the same for a message event, with the event's own entry set for a
// state event. The input is not modified.
func StateAfter(before map[eventauth.StateKey]string, ev *event.PDU) map[eventauth.StateKey]string {
	sk, ok := ev.StateKey()
	if !ok {
		return before
	}
	out := make(map[eventauth.StateKey]string, len(before)+1)
	for k, v := range before {
		out[k] = v
	}
	out[eventauth.StateKey{Type: ev.Type(), StateKey: sk}] = ev.EventID()
	return out
}

// StateBefore returns the state before an event from the states after
// each of its prev events: the one state when there is one, else their
// resolution by the room version's algorithm (stateres.Resolve), for
// which provider must give every event the states and their auth chains
// name.
func StateBefore(ctx context.Context, rules roomversion.Rules, afterPrevs []map[eventauth.StateKey]string, provider stateres.Provider) (map[eventauth.StateKey]string, error) {
	switch len(afterPrevs) {
	case 0:
		return nil, fmt.Errorf("%w: no prev states", ErrBadResponse)
	case 1:
		return afterPrevs[0], nil
	}
	return stateres.Resolve(ctx, rules, afterPrevs, provider)
}

package membership

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/federation/inbound"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
)

// ParseMakeResponse reads a make_join, make_leave or make_knock answer:
// its room version (the spec's "1" when absent) and event template. A
// version supported does not accept (nil: every version roomversion
// knows) gives [ErrUnsupportedRoomVersion]; a body that is not an object
// with an event object gives [ErrBadResponse].
func ParseMakeResponse(body []byte, supported func(roomversion.Rules) bool) (roomversion.Rules, []byte, error) {
	if len(body) > 4*event.MaxSize || !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return roomversion.Rules{}, nil, badResponse(nil, "make answer is not a JSON object of at most %d bytes", 4*event.MaxSize)
	}
	ver := implicitRoomVersion
	if v := gjson.GetBytes(body, "room_version"); v.Exists() {
		if v.Type != gjson.String {
			return roomversion.Rules{}, nil, badResponse(nil, "room_version is not a string")
		}
		ver = v.Str
	}
	rules, err := roomversion.Get(ver)
	if err != nil || (supported != nil && !supported(rules)) {
		e := newErr(400, "M_INCOMPATIBLE_ROOM_VERSION", ErrUnsupportedRoomVersion, err, "room version %q", ver)
		e.RoomVersion = ver
		return rules, nil, e
	}
	ev := gjson.GetBytes(body, "event")
	if !ev.IsObject() {
		return rules, nil, badResponse(nil, "no event template")
	}
	return rules, []byte(ev.Raw), nil
}

// BuildRequest describes our event built from a template.
type BuildRequest struct {
	Rules    roomversion.Rules
	Template []byte
	// RoomID and UserID are what we asked for.
	RoomID, UserID string
	// Membership is Join, Leave or Knock.
	Membership string
	// ServerName and Key sign the event.
	ServerName string
	Key        *signing.Key
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// BuildEvent checks a template (type m.room.member, the room and user we
// asked for as room_id, sender and state_key, the membership, prev_events,
// auth_events and depth present) and builds our event from it: the
// template's content (with join_authorised_via_users_server, if any),
// references and depth, our origin_server_ts, hashes and signature.
// Errors wrap [ErrBadResponse] (a template for another user, room or
// membership included) or event's errors.
func BuildEvent(req BuildRequest) (*event.PDU, error) {
	t := gjson.ParseBytes(req.Template)
	if len(req.Template) > event.MaxSize || !gjson.ValidBytes(req.Template) || !t.IsObject() {
		return nil, badResponse(nil, "the template is not a JSON object")
	}
	str := func(k string) string {
		v := t.Get(k)
		if v.Type != gjson.String {
			return "\x00missing"
		}
		return v.Str
	}
	if typ := str("type"); typ != "m.room.member" {
		return nil, badResponse(nil, "template type %q", typ)
	}
	if r := str("room_id"); r != req.RoomID {
		return nil, badResponse(nil, "template for room %q, not %s", r, req.RoomID)
	}
	if s := str("sender"); s != req.UserID {
		return nil, badResponse(nil, "template sender %q, not %s", s, req.UserID)
	}
	if s := str("state_key"); s != req.UserID {
		return nil, badResponse(nil, "template state_key %q, not %s", s, req.UserID)
	}
	content := t.Get("content")
	if !content.IsObject() {
		return nil, badResponse(nil, "template content is not an object")
	}
	if m := content.Get("membership"); m.Str != req.Membership {
		return nil, badResponse(nil, "template membership %s, not %q", m.Raw, req.Membership)
	}
	depth := t.Get("depth")
	if depth.Type != gjson.Number || depth.Int() < 1 {
		return nil, badResponse(nil, "template depth %s", depth.Raw)
	}
	b := event.Builder{RoomID: req.RoomID, Type: "m.room.member", Sender: req.UserID, StateKey: &req.UserID,
		Content: []byte(content.Raw), Depth: depth.Int(), Now: req.Now, ReferenceHashes: map[string][]byte{}}
	var err error
	if b.PrevEvents, err = templateRefs(req.Rules, t.Get("prev_events"), "prev_events", event.MaxPrevEvents, b.ReferenceHashes); err != nil {
		return nil, err
	}
	if b.AuthEvents, err = templateRefs(req.Rules, t.Get("auth_events"), "auth_events", event.MaxAuthEvents, b.ReferenceHashes); err != nil {
		return nil, err
	}
	if req.Key == nil {
		return nil, badEvent(nil, "no signing key")
	}
	ev, err := b.Build(req.Rules, req.ServerName, req.Key.KeyID(), req.Key.PrivateKey())
	if err != nil {
		return nil, badResponse(err, "building from the template")
	}
	return ev, nil
}

// templateRefs reads prev_events or auth_events of a template, with the
// reference hashes of room versions 1-2.
func templateRefs(rules roomversion.Rules, v gjson.Result, field string, max int, hashes map[string][]byte) ([]string, error) {
	if !v.IsArray() {
		return nil, badResponse(nil, "template %s is not a list", field)
	}
	var ids []string
	var err error
	v.ForEach(func(_, e gjson.Result) bool {
		if len(ids) == max {
			err = badResponse(nil, "template %s has more than %d entries", field, max)
			return false
		}
		if !rules.EventReferencesWithHashes {
			if e.Type != gjson.String {
				err = badResponse(nil, "template %s entry %s", field, e.Raw)
				return false
			}
			ids = append(ids, e.Str)
			return true
		}
		pair := e.Array()
		if len(pair) != 2 || pair[0].Type != gjson.String || pair[1].Get("sha256").Type != gjson.String {
			err = badResponse(nil, "template %s entry %s", field, e.Raw)
			return false
		}
		h, derr := base64.RawStdEncoding.DecodeString(trimPad(pair[1].Get("sha256").Str))
		if derr != nil {
			err = badResponse(derr, "template %s hash", field)
			return false
		}
		ids = append(ids, pair[0].Str)
		hashes[pair[0].Str] = h
		return true
	})
	return ids, err
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

// DefaultMaxJoinEvents bounds the events of a send_join answer when
// SendJoinCheck.MaxEvents is zero.
const DefaultMaxJoinEvents = 200_000

// SendJoinCheck describes a send_join answer to check.
type SendJoinCheck struct {
	Rules roomversion.Rules
	// Join is the join event we sent.
	Join *event.PDU
	// Response is the send_join v2 answer (for v1, the object inside the
	// [200, {...}] pair).
	Response []byte
	// Keys verifies the signatures.
	Keys signing.KeyLookup
	// MaxEvents bounds len(state) + len(auth_chain). Zero:
	// DefaultMaxJoinEvents.
	MaxEvents int
	// VerifyOptions for the signatures (zero: crypto/ed25519 each).
	VerifyOptions signing.VerifyOptions
}

// Dropped is an event of a send_join answer that did not check out.
type Dropped struct {
	EventID string // "" when the event could not be parsed
	Err     error
}

// JoinedRoom is a checked send_join answer.
type JoinedRoom struct {
	// Join is our join event, or the resident's countersigned copy when
	// the answer had one with the same event ID and valid signatures.
	Join *event.PDU
	// State is the room's state before the join: every entry passed the
	// checks. StateEvents are the same events as a list.
	State       eventauth.StateMap
	StateEvents []*event.PDU
	// AuthChain holds the auth chain events that passed the checks.
	AuthChain []*event.PDU
	// Redacted lists events kept in redacted form (content hash mismatch).
	Redacted []string
	// Dropped lists what was left out and why.
	Dropped []Dropped
}

// CheckSendJoinResponse checks a send_join answer. Every event of state
// and auth_chain must be well formed for the room version and signed by
// the servers that must sign it (else it is dropped); a content hash
// mismatch keeps the event redacted; every event must be in the join's
// room; the state must hold exactly one create event, of the room version
// we joined with, and no (type, state_key) twice; every event must pass
// the authorization rules against its own auth events, found in the
// answer (events whose auth events are missing, dropped or rejected are
// rejected and dropped, recursively). State events that are dropped are
// left out of the state. Finally our join must pass the authorization
// rules against the checked state.
//
// Errors wrap [ErrBadResponse] (with the reason, and the
// *eventauth.Error when the join is refused by the state).
func CheckSendJoinResponse(ctx context.Context, c SendJoinCheck) (*JoinedRoom, error) {
	max := c.MaxEvents
	if max <= 0 {
		max = DefaultMaxJoinEvents
	}
	body := gjson.ParseBytes(c.Response)
	if !gjson.ValidBytes(c.Response) || !body.IsObject() {
		return nil, badResponse(nil, "send_join answer is not a JSON object")
	}
	stateList, chainList := body.Get("state"), body.Get("auth_chain")
	if !stateList.IsArray() || !chainList.IsArray() {
		return nil, badResponse(nil, "state and auth_chain must be lists")
	}
	if body.Get("members_omitted").Type == gjson.True {
		return nil, badResponse(nil, "members_omitted, which we did not ask for")
	}
	n := 0
	var raws [][]byte
	inState := map[int]bool{}
	// Events listed in both state and auth_chain (as residents usually
	// send them) are checked once.
	index := map[string]int{}
	for li, list := range []gjson.Result{stateList, chainList} {
		isState := li == 0
		var err error
		list.ForEach(func(_, v gjson.Result) bool {
			n++
			if n > max {
				err = badResponse(nil, "more than %d events", max)
				return false
			}
			i, seen := index[v.Raw]
			if !seen {
				i = len(raws)
				index[v.Raw] = i
				raws = append(raws, []byte(v.Raw))
			}
			if isState {
				inState[i] = true
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	out := &JoinedRoom{Join: c.Join, State: eventauth.StateMap{}}
	checker := inbound.Checker{Keys: c.Keys, VerifyOptions: c.VerifyOptions}
	results := checker.Verify(ctx, c.Rules, raws)
	byID := map[string]*event.PDU{}
	stateIDs := map[string]bool{}
	for i, r := range results {
		if r.Outcome != inbound.Accepted {
			out.Dropped = append(out.Dropped, Dropped{EventID: r.EventID, Err: r.Err})
			continue
		}
		ev := r.Event
		if ev.RoomID() != c.Join.RoomID() {
			out.Dropped = append(out.Dropped, Dropped{EventID: ev.EventID(), Err: badResponse(nil, "event of room %s", ev.RoomID())})
			continue
		}
		if r.Redacted {
			out.Redacted = append(out.Redacted, ev.EventID())
		}
		if _, seen := byID[ev.EventID()]; !seen {
			byID[ev.EventID()] = ev
		}
		if inState[i] {
			if !ev.IsState() {
				return nil, badResponse(nil, "state holds %s, which has no state_key", ev.EventID())
			}
			stateIDs[ev.EventID()] = true
		}
	}
	// The create event: exactly one, in the state, of our version.
	var create *event.PDU
	for _, ev := range byID {
		if ev.Type() != "m.room.create" {
			continue
		}
		if create != nil {
			return nil, badResponse(nil, "two create events: %s and %s", create.EventID(), ev.EventID())
		}
		create = ev
	}
	if create == nil || !stateIDs[create.EventID()] {
		return nil, badResponse(nil, "no create event in the state")
	}
	cc, err := create.CreateContent()
	if err != nil {
		return nil, badResponse(err, "create event")
	}
	if cc.RoomVersion != c.Rules.ID {
		return nil, badResponse(nil, "the create event has room version %q, we joined with %s", cc.RoomVersion, c.Rules.ID)
	}
	// Every event against its auth events, auth events first.
	verdict := authAll(byID, create)
	for _, id := range sortedKeys(verdict) {
		if err := verdict[id]; err != nil {
			out.Dropped = append(out.Dropped, Dropped{EventID: id, Err: err})
		}
	}
	for id := range stateIDs {
		if verdict[id] != nil {
			continue
		}
		ev := byID[id]
		sk, _ := ev.StateKey()
		k := eventauth.StateKey{Type: ev.Type(), StateKey: sk}
		if prev := out.State[k]; prev != nil {
			return nil, badResponse(nil, "the state has (%s, %q) twice: %s and %s", k.Type, k.StateKey, prev.EventID(), id)
		}
		out.State[k] = ev
	}
	for id, ev := range byID {
		if verdict[id] != nil {
			continue
		}
		if stateIDs[id] {
			out.StateEvents = append(out.StateEvents, ev)
		} else {
			out.AuthChain = append(out.AuthChain, ev)
		}
	}
	sortByDepth(out.StateEvents)
	sortByDepth(out.AuthChain)
	// The resident's countersigned join, if any.
	if e := body.Get("event"); e.IsObject() {
		r := checker.Verify(ctx, c.Rules, [][]byte{[]byte(e.Raw)})[0]
		if r.Outcome == inbound.Accepted && !r.Redacted && r.Event.EventID() == c.Join.EventID() {
			out.Join = r.Event
		} else {
			out.Dropped = append(out.Dropped, Dropped{EventID: r.EventID, Err: badResponse(r.Err, "the answer's event is not our join")})
		}
	}
	if err := eventauth.Check(out.Join, out.State); err != nil {
		return nil, badResponse(err, "the returned state does not allow our join")
	}
	return out, nil
}

// authAll checks every event against its auth events, auth events first,
// without recursion (auth chains can be long). The result maps every
// event ID to nil (allowed) or why it is not.
func authAll(byID map[string]*event.PDU, create *event.PDU) map[string]error {
	verdict := make(map[string]error, len(byID))
	const visiting = 1
	state := map[string]int{}
	type frame struct {
		ev   *event.PDU
		next int // index of the next auth event to visit
	}
	for _, root := range sortedKeys(byID) {
		if _, done := verdict[root]; done {
			continue
		}
		stack := []frame{{ev: byID[root]}}
		state[root] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			auth := top.ev.AuthEventIDs()
			if top.next < len(auth) {
				id := auth[top.next]
				top.next++
				if _, done := verdict[id]; done || byID[id] == nil {
					continue
				}
				if state[id] == visiting {
					verdict[top.ev.EventID()] = badResponse(nil, "auth events form a cycle through %s", id)
					continue
				}
				state[id] = visiting
				stack = append(stack, frame{ev: byID[id]})
				continue
			}
			ev := top.ev
			stack = stack[:len(stack)-1]
			delete(state, ev.EventID())
			if _, done := verdict[ev.EventID()]; done {
				continue
			}
			verdict[ev.EventID()] = checkOne(ev, auth, byID, verdict, create)
		}
	}
	return verdict
}

func checkOne(ev *event.PDU, auth []string, byID map[string]*event.PDU, verdict map[string]error, create *event.PDU) error {
	evs := make([]*event.PDU, 0, len(auth))
	for _, id := range auth {
		a := byID[id]
		if a == nil {
			return badResponse(nil, "auth event %s of %s is not in the answer", id, ev.EventID())
		}
		evs = append(evs, a)
	}
	opts := eventauth.Options{
		Create:   create,
		Rejected: func(id string) bool { return verdict[id] != nil },
	}
	if _, err := eventauth.CheckAuthEvents(ev, evs, opts); err != nil {
		return badResponse(err, "%s", ev.EventID())
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

package membership

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/internal/b64"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// implicitRoomVersion is the room version the spec assumes where a
// make_join request has no ver, a create event no room_version, or a
// make_* answer no room_version.
const implicitRoomVersion = "1"

// The memberships of the handshakes.
const (
	Join   = "join"
	Leave  = "leave"
	Knock  = "knock"
	Invite = "invite"
)

// MakeRequest is a make_join, make_leave or make_knock request.
type MakeRequest struct {
	// Origin is the requesting server (authenticated by X-Matrix).
	Origin string
	// UserID is the {userId} of the path.
	UserID string
	// Membership is Join, Leave or Knock.
	Membership string
	// Versions are the ver query values (make_join, make_knock); nil for
	// make_leave. For make_join no ver means ["1"].
	Versions []string
	// Rules are the room's version.
	Rules roomversion.Rules
}

// CheckMakeRequest checks a make_* request before a template is built.
// Errors: 403 M_FORBIDDEN wrapping [ErrSenderNotOrigin] (user not on the
// origin); 400 M_INCOMPATIBLE_ROOM_VERSION wrapping
// [ErrIncompatibleRoomVersion], with RoomVersion set (version not in
// ver); 403 M_FORBIDDEN wrapping [ErrNotAllowed] (knock in a room version
// without knocking); 400 M_INVALID_PARAM wrapping [ErrBadEvent] (bad user
// ID or membership).
func CheckMakeRequest(req MakeRequest) error {
	uid, err := id.ParseUserID(req.UserID)
	if err != nil {
		return newErr(400, "M_INVALID_PARAM", ErrBadEvent, err, "user ID %q", req.UserID)
	}
	if uid.Server().String() != req.Origin {
		return newErr(403, "M_FORBIDDEN", ErrSenderNotOrigin, nil, "%s is not a user of %s", req.UserID, req.Origin)
	}
	switch req.Membership {
	case Join, Knock:
		vers := req.Versions
		if len(vers) == 0 && req.Membership == Join {
			vers = []string{implicitRoomVersion}
		}
		if !slices.Contains(vers, req.Rules.ID) {
			e := newErr(400, "M_INCOMPATIBLE_ROOM_VERSION", ErrIncompatibleRoomVersion, nil, "the room has version %s, which %s does not support", req.Rules.ID, req.Origin)
			e.RoomVersion = req.Rules.ID
			return e
		}
		if req.Membership == Knock && !req.Rules.Knocking {
			return newErr(403, "M_FORBIDDEN", ErrNotAllowed, nil, "room version %s has no knocking", req.Rules.ID)
		}
	case Leave:
	default:
		return newErr(400, "M_INVALID_PARAM", ErrBadEvent, nil, "membership %q", req.Membership)
	}
	return nil
}

// TemplateRequest describes a template to build.
type TemplateRequest struct {
	Rules  roomversion.Rules
	RoomID string
	// UserID is the user the template is for (sender and state_key).
	UserID string
	// Membership is Join, Leave or Knock.
	Membership string
	// Origin is our server name (the template's origin).
	Origin string
	// Content is extra content (for example
	// join_authorised_via_users_server), a JSON object or nil;
	// membership is set by BuildTemplate.
	Content []byte
	// Prev are the room's forward extremities (at most 20 are used, the
	// deepest first).
	Prev []*event.PDU
	// State looks up an entry of the room's current state, nil when
	// there is none. With a StateMap m: func(k eventauth.StateKey)
	// *event.PDU { return m[k] }.
	State func(eventauth.StateKey) *event.PDU
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Template is the answer to make_join, make_leave and make_knock.
type Template struct {
	RoomVersion string          `json:"room_version"`
	Event       json.RawMessage `json:"event"`
}

// BuildTemplate builds the unsigned event for a make_* answer: room_id,
// sender and state_key (the user), type m.room.member, content with the
// membership, prev_events (the extremities), auth_events (selected from
// the current state), depth, origin and origin_server_ts. It checks the
// template against the authorization rules with the selected auth events
// first. Errors: 403 M_FORBIDDEN wrapping [ErrNotAllowed] and the
// *eventauth.Error; 400 M_BAD_JSON wrapping [ErrBadEvent] for bad input.
func BuildTemplate(req TemplateRequest) (*Template, error) {
	if req.State == nil || len(req.Prev) == 0 {
		return nil, badEvent(nil, "the template needs the current state and at least one prev event")
	}
	content := req.Content
	if content == nil {
		content = []byte(`{}`)
	}
	if !gjson.ValidBytes(content) || !gjson.ParseBytes(content).IsObject() {
		return nil, badEvent(nil, "content is not a JSON object")
	}
	content, err := sjson.SetBytes(content, "membership", req.Membership)
	if err != nil {
		return nil, badEvent(err, "content")
	}
	prev := slices.Clone(req.Prev)
	slices.SortStableFunc(prev, func(a, b *event.PDU) int { return int(max(-1, min(1, b.Depth()-a.Depth()))) })
	prev = prev[:min(len(prev), event.MaxPrevEvents)]
	depth := int64(0)
	for _, p := range prev {
		depth = max(depth, p.Depth())
	}
	authState := eventauth.StateMap{}
	var auth []*event.PDU
	for _, k := range eventauth.AuthEventsNeeded(req.Rules, "m.room.member", req.UserID, req.UserID, content) {
		if ev := req.State(k); ev != nil {
			auth = append(auth, ev)
			authState.Add(ev)
		}
	}
	if !req.Rules.CreateEventInAuthEvents {
		authState.Add(req.State(eventauth.StateKey{Type: "m.room.create"}))
	}
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	refs := func(evs []*event.PDU) (any, error) {
		if !req.Rules.EventReferencesWithHashes {
			ids := make([]string, len(evs))
			for i, e := range evs {
				ids[i] = e.EventID()
			}
			return ids, nil
		}
		out := make([]any, len(evs))
		for i, e := range evs {
			h, err := hashing.ReferenceHash(req.Rules, e.JSON())
			if err != nil {
				return nil, err
			}
			out[i] = []any{e.EventID(), map[string]string{"sha256": b64.Std(h)}}
		}
		return out, nil
	}
	prevRefs, err := refs(prev)
	if err != nil {
		return nil, badEvent(err, "prev events")
	}
	authRefs, err := refs(auth)
	if err != nil {
		return nil, badEvent(err, "auth events")
	}
	tmpl := map[string]any{
		"room_id": req.RoomID, "sender": req.UserID, "state_key": req.UserID, "type": "m.room.member",
		"content": json.RawMessage(content), "prev_events": prevRefs, "auth_events": authRefs,
		"depth": depth + 1, "origin": req.Origin, "origin_server_ts": now().UnixMilli(),
	}
	raw, err := canonicaljson.Marshal(tmpl)
	if err != nil {
		return nil, badEvent(err, "encoding the template")
	}
	// Check the template as an event: placeholders for what the joining
	// server fills in.
	probe, _ := sjson.SetRawBytes(raw, "hashes", []byte(`{"sha256":""}`))
	probe, _ = sjson.SetRawBytes(probe, "signatures", []byte(`{}`))
	if req.Rules.EventIDFormat == roomversion.EventIDServerGenerated {
		probe, _ = sjson.SetBytes(probe, "event_id", "$template:"+req.Origin)
	}
	ev, err := event.Parse(req.Rules, probe)
	if err != nil {
		return nil, badEvent(err, "template")
	}
	opts := eventauth.Options{VerifyServerSignature: func(*event.PDU, string) error { return nil }}
	if _, err := eventauth.CheckWithOptions(ev, authState, opts); err != nil {
		return nil, newErr(403, "M_FORBIDDEN", ErrNotAllowed, err, "%s may not %s", req.UserID, req.Membership)
	}
	return &Template{RoomVersion: req.Rules.ID, Event: raw}, nil
}

// SignRequest is an event a server asks us to accept: send_join,
// send_leave or send_knock.
type SignRequest struct {
	Rules roomversion.Rules
	// Origin is the requesting server; OurServer is us.
	Origin, OurServer string
	// RoomID and EventID are the path's.
	RoomID, EventID string
	// Membership is Join, Leave or Knock.
	Membership string
	// Event is the request body.
	Event []byte
	// Keys verifies the signatures.
	Keys signing.KeyLookup
}

// CheckSignRequest checks an event before we accept and sign it: format,
// event ID as in the path, type m.room.member, room, state_key = sender,
// sender on the origin, membership, and signatures and content hash.
// For a join naming join_authorised_via_users_server, that user must be
// ours (we are asked to sign for them). Authorization against the room
// is the caller's next step (inbound.Checker.Authorize).
//
// Errors: 400 M_BAD_JSON wrapping [ErrBadEvent]; 403 M_FORBIDDEN wrapping
// [ErrSenderNotOrigin] or [ErrSignature].
func CheckSignRequest(ctx context.Context, req SignRequest) (*event.PDU, error) {
	ev, err := parseMember(req.Rules, req.Event, req.RoomID, req.EventID, req.Membership)
	if err != nil {
		return nil, err
	}
	sk, _ := ev.StateKey()
	if sk != ev.Sender() {
		return nil, badEvent(nil, "state_key %q is not the sender %s", sk, ev.Sender())
	}
	if err := senderOn(ev, req.Origin); err != nil {
		return nil, err
	}
	if req.Membership == Join {
		mc, err := ev.MemberContent()
		if err != nil {
			return nil, badEvent(err, "content")
		}
		if via := mc.JoinAuthorisedViaUsersServer; via != "" {
			vu, err := id.ParseUserID(via)
			if err != nil || vu.Server().String() != req.OurServer {
				return nil, badEvent(err, "join_authorised_via_users_server %q is not a user of %s", via, req.OurServer)
			}
		}
	}
	if err := signing.VerifyEvent(ctx, req.Rules, ev.JSON(), req.Keys); err != nil {
		return nil, newErr(403, "M_FORBIDDEN", ErrSignature, err, "event %s", ev.EventID())
	}
	return ev, nil
}

// parseMember parses a member event and checks what every handshake
// checks.
func parseMember(rules roomversion.Rules, raw []byte, roomID, eventID, membership string) (*event.PDU, error) {
	ev, err := event.Parse(rules, raw)
	if err != nil {
		return nil, badEvent(err, "event")
	}
	if eventID != "" && ev.EventID() != eventID {
		return nil, badEvent(nil, "event ID %s, not %s as in the path", ev.EventID(), eventID)
	}
	if ev.Type() != "m.room.member" {
		return nil, badEvent(nil, "type %q, not m.room.member", ev.Type())
	}
	if ev.RoomID() != roomID {
		return nil, badEvent(nil, "room %s, not %s", ev.RoomID(), roomID)
	}
	if ev.Membership() != membership {
		return nil, badEvent(nil, "membership %q, not %q", ev.Membership(), membership)
	}
	if _, ok := ev.StateKey(); !ok {
		return nil, badEvent(nil, "no state_key")
	}
	return ev, nil
}

func senderOn(ev *event.PDU, origin string) error {
	uid, err := id.ParseUserID(ev.Sender())
	if err != nil || uid.Server().String() != origin {
		return newErr(403, "M_FORBIDDEN", ErrSenderNotOrigin, err, "sender %s is not a user of %s", ev.Sender(), origin)
	}
	return nil
}

// InviteRequest is an invite v2 to one of our users.
type InviteRequest struct {
	// RoomVersion is the body's room_version.
	RoomVersion string
	// Supported reports whether we support a room version; nil: every
	// version roomversion knows.
	Supported func(roomversion.Rules) bool
	// Origin is the inviting server; OurServer is us.
	Origin, OurServer string
	// RoomID and EventID are the path's.
	RoomID, EventID string
	// Event is the body's event.
	Event []byte
	Keys  signing.KeyLookup
}

// CheckInvite checks an invite before we sign it: a room version we
// support, the event as [CheckSignRequest] checks it but with membership
// invite, the sender on the origin and the state_key a user of ours.
// Errors: 400 M_INCOMPATIBLE_ROOM_VERSION wrapping
// [ErrUnsupportedRoomVersion]; otherwise as CheckSignRequest, and 403
// M_FORBIDDEN wrapping [ErrBadEvent] when the invitee is not ours.
func CheckInvite(ctx context.Context, req InviteRequest) (*event.PDU, roomversion.Rules, error) {
	rules, err := roomversion.Get(req.RoomVersion)
	if err != nil || (req.Supported != nil && !req.Supported(rules)) {
		e := newErr(400, "M_INCOMPATIBLE_ROOM_VERSION", ErrUnsupportedRoomVersion, err, "room version %q", req.RoomVersion)
		e.RoomVersion = req.RoomVersion
		return nil, rules, e
	}
	ev, err := parseMember(rules, req.Event, req.RoomID, req.EventID, Invite)
	if err != nil {
		return nil, rules, err
	}
	if err := senderOn(ev, req.Origin); err != nil {
		return nil, rules, err
	}
	sk, _ := ev.StateKey()
	invitee, err := id.ParseUserID(sk)
	if err != nil || invitee.Server().String() != req.OurServer {
		return nil, rules, newErr(403, "M_FORBIDDEN", ErrBadEvent, err, "invitee %q is not a user of %s", sk, req.OurServer)
	}
	if err := signing.VerifyEvent(ctx, rules, ev.JSON(), req.Keys); err != nil {
		return nil, rules, newErr(403, "M_FORBIDDEN", ErrSignature, err, "event %s", ev.EventID())
	}
	return ev, rules, nil
}

// MaxInviteRoomState bounds invite_room_state.
const MaxInviteRoomState = 100

// CheckInviteRoomState checks an invite's invite_room_state: at most
// MaxInviteRoomState objects, each with a string type; an m.room.create
// entry whose room_version is the room's; entries carrying a room_id name
// the room. Stripped events (type, state_key, sender, content, as Dendrite
// sends) pass. The spec lets servers only warn about a failure in room
// versions 1-11. Errors: 400 M_MISSING_PARAM wrapping
// [ErrInviteRoomState].
func CheckInviteRoomState(rules roomversion.Rules, roomID string, state []json.RawMessage) error {
	fail := func(format string, args ...any) error {
		return newErr(400, "M_MISSING_PARAM", ErrInviteRoomState, nil, format, args...)
	}
	if len(state) > MaxInviteRoomState {
		return fail("%d entries, more than %d", len(state), MaxInviteRoomState)
	}
	create := false
	for i, raw := range state {
		v := gjson.ParseBytes(raw)
		if !gjson.ValidBytes(raw) || !v.IsObject() || v.Get("type").Type != gjson.String {
			return fail("entry %d is not an event", i)
		}
		if r := v.Get("room_id"); r.Exists() && r.Str != roomID {
			return fail("entry %d is for room %s", i, r.Raw)
		}
		if v.Get("type").Str == "m.room.create" {
			ver := implicitRoomVersion
			if rv := v.Get("content.room_version"); rv.Exists() {
				ver = rv.String()
			}
			if ver != rules.ID {
				return fail("the create event has room version %q, not %s", ver, rules.ID)
			}
			create = true
		}
	}
	if !create {
		return fail("no m.room.create entry")
	}
	return nil
}

// Countersign adds our signature to an event we accepted (the resident's
// signature on a join, leave or knock, the invitee server's on an
// invite) and returns the signed event. Errors (no key, signing failed)
// are 500 M_UNKNOWN wrapping [ErrBadEvent].
func Countersign(ev *event.PDU, serverName string, key *signing.Key) (*event.PDU, error) {
	if key == nil {
		return nil, newErr(500, "M_UNKNOWN", ErrBadEvent, nil, "no signing key")
	}
	signed, err := signing.SignEvent(ev.Rules(), serverName, key.KeyID(), key.PrivateKey(), ev.JSON())
	if err != nil {
		return nil, newErr(500, "M_UNKNOWN", ErrBadEvent, err, "signing")
	}
	out, err := event.Parse(ev.Rules(), signed)
	if err != nil {
		return nil, newErr(500, "M_UNKNOWN", ErrBadEvent, err, "signed event")
	}
	return out, nil
}

package event

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/internal/bytesconv"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// MaxSize is the largest a PDU may be, in bytes of canonical JSON.
const MaxSize = 65536

// Limits on identifier-like fields and on reference lists.
const (
	MaxFieldBytes = 255 // type, state_key, and every identifier
	MaxAuthEvents = 10
	MaxPrevEvents = 20
)

// Sentinel errors wrapped by Parse and the views.
var (
	ErrTooLarge      = errors.New("event: PDU larger than 65536 bytes")
	ErrBadJSON       = errors.New("event: invalid JSON")
	ErrMissingField  = errors.New("event: missing field")
	ErrBadField      = errors.New("event: invalid field")
	ErrBadContent    = errors.New("event: invalid content")
	ErrNotApplicable = errors.New("event: view does not apply to this event type")
)

func fieldErr(sentinel error, field, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", sentinel, field, fmt.Sprintf(format, args...))
}

// PDU is a parsed, format-checked event. It is immutable.
type PDU struct {
	// The fields the auth rules and state resolution read for every event
	// come first, so that they share as few cache lines as possible.
	eventID  string
	typ      string
	stateKey string
	sender   string
	member   string
	isState  bool
	ts       int64
	depth    int64
	auth     []string // in authBuf when it fits
	content  []byte
	authBuf  [4]string
	rules    *roomversion.Rules // shared by the events of a room version
	roomID   string
	prev     []string
	redacts  string
	raw      []byte
	unsigned []byte
	origin   string

	views views
}

// computedIDLen is the length of the event IDs that room versions with
// computed IDs give: "$" and 43 characters of unpadded base64 of a SHA-256
// hash (0 for server-generated IDs, which are part of the JSON).
func computedIDLen(rules roomversion.Rules) int {
	if rules.EventIDFormat == roomversion.EventIDServerGenerated {
		return 0
	}
	return 44
}

// Parse checks raw against the PDU format of the room version and returns
// the parsed event. For room versions 1-2 the event ID is the event's own
// event_id; from version 3 it is computed from the reference hash. Errors
// wrap [ErrTooLarge], [ErrBadJSON] (and the canonicaljson sentinel),
// [ErrMissingField] or [ErrBadField]. The event keeps its own copy of raw:
// the caller may reuse raw afterwards.
//
// The checks run in a fixed order, one step per concern (each a function
// of its own): the envelope (size and canonical JSON), the top-level
// fields, the references, the identifiers whose format depends on the room
// version, and the event ID. The first failing check gives the error.
func Parse(rules roomversion.Rules, raw []byte) (*PDU, error) {
	var env envelope
	if err := env.read(rules, raw); err != nil {
		return nil, err
	}
	var f fields
	if err := f.split(env.text); err != nil {
		return nil, err
	}
	p := &PDU{rules: roomversion.Shared(rules), raw: stringBytes(env.text)}
	if err := p.readTopLevel(&f); err != nil {
		return nil, err
	}
	if err := p.readReferences(&f); err != nil {
		return nil, err
	}
	if err := p.readIdentifiers(&f); err != nil {
		return nil, err
	}
	if err := p.setEventID(&f, &env); err != nil {
		return nil, err
	}
	return p, nil
}

// envelope is the event's own copy of its JSON, with room reserved after
// it for a computed event ID.
//
// One copy of the input, followed by the computed event ID, backs the
// event: its JSON, content, unsigned, event ID and every unescaped string
// field are views of it. The event does not change when the caller reuses
// raw, and it takes one allocation, not one per field. The ID is computed
// last, after the field checks, into the room reserved here: appending to
// a strings.Builder leaves the strings it returned before unchanged.
type envelope struct {
	raw  []byte // the caller's input, for the reference hash
	buf  strings.Builder
	text string // the copy of raw
}

// read checks the size of raw and that it is canonical JSON in the room
// version's sense, and copies it into env (which must not be copied
// afterwards: it holds a strings.Builder).
func (env *envelope) read(rules roomversion.Rules, raw []byte) error {
	if len(raw) > 4*MaxSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	canon, err := canonicaljson.Append(make([]byte, 0, len(raw)), raw, canonicaljson.Options{Strict: rules.StrictCanonicalJSON})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	if len(canon) > MaxSize {
		return fmt.Errorf("%w: %d bytes as canonical JSON", ErrTooLarge, len(canon))
	}
	env.raw = raw
	env.buf.Grow(len(raw) + computedIDLen(rules))
	env.buf.Write(raw)
	env.text = env.buf.String()
	return nil
}

// fields holds the top-level members of an event that Parse reads; absent
// ones are the zero gjson.Result.
type fields struct {
	typ, roomID, sender, stateKey, content, prev, auth, depth, ts, redacts, eventID, hashes, signatures, unsigned, origin gjson.Result
}

// split fills f with the top-level members Parse reads out of the JSON
// object text (later duplicates win, as canonical JSON has none).
func (f *fields) split(text string) error {
	top := gjson.Parse(text)
	if !top.IsObject() {
		return fmt.Errorf("%w: not an object", ErrBadJSON)
	}
	top.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "type":
			f.typ = v
		case "room_id":
			f.roomID = v
		case "sender":
			f.sender = v
		case "state_key":
			f.stateKey = v
		case "content":
			f.content = v
		case "prev_events":
			f.prev = v
		case "auth_events":
			f.auth = v
		case "depth":
			f.depth = v
		case "origin_server_ts":
			f.ts = v
		case "redacts":
			f.redacts = v
		case "event_id":
			f.eventID = v
		case "hashes":
			f.hashes = v
		case "signatures":
			f.signatures = v
		case "unsigned":
			f.unsigned = v
		case "origin":
			f.origin = v
		}
		return true
	})
	return nil
}

// readTopLevel checks the top-level fields whose format is the same in
// every room version (type, sender, state_key, content, depth,
// origin_server_ts, hashes, signatures, unsigned, origin) and sets them on
// p, with the membership of m.room.member events. Like the steps after
// it, it reads the room version's rules from p.
func (p *PDU) readTopLevel(f *fields) error {
	rules := p.rules
	var err error
	if p.typ, err = shortString(f.typ, "type"); err != nil {
		return err
	}
	if p.sender, err = shortString(f.sender, "sender"); err != nil {
		return err
	}
	if _, err := id.ParseUserID(p.sender); err != nil {
		return fieldErr(ErrBadField, "sender", "%v", err)
	}
	if f.stateKey.Exists() {
		if f.stateKey.Type != gjson.String {
			return fieldErr(ErrBadField, "state_key", "not a string")
		}
		if len(f.stateKey.Str) > MaxFieldBytes {
			return fieldErr(ErrBadField, "state_key", "longer than %d bytes", MaxFieldBytes)
		}
		p.stateKey, p.isState = f.stateKey.Str, true
	}
	if !f.content.Exists() {
		return fieldErr(ErrMissingField, "content", "required")
	}
	if !f.content.IsObject() {
		return fieldErr(ErrBadField, "content", "not an object")
	}
	p.content = stringBytes(f.content.Raw)
	if p.typ == "m.room.member" {
		if m := f.content.Get("membership"); m.Type == gjson.String {
			p.member = m.Str
		}
	}
	if p.depth, err = integer(f.depth, "depth", 0, rules.MaxDepth); err != nil {
		return err
	}
	if p.ts, err = integer(f.ts, "origin_server_ts", -1<<53+1, 1<<53-1); err != nil {
		return err
	}
	if !f.hashes.Exists() {
		return fieldErr(ErrMissingField, "hashes", "required")
	}
	if !f.hashes.IsObject() || f.hashes.Get("sha256").Type != gjson.String {
		return fieldErr(ErrBadField, "hashes", "want an object with a sha256 string")
	}
	if !f.signatures.Exists() {
		return fieldErr(ErrMissingField, "signatures", "required")
	}
	if !f.signatures.IsObject() {
		return fieldErr(ErrBadField, "signatures", "not an object")
	}
	if f.unsigned.Exists() {
		if !f.unsigned.IsObject() {
			return fieldErr(ErrBadField, "unsigned", "not an object")
		}
		p.unsigned = stringBytes(f.unsigned.Raw)
	}
	if f.origin.Type == gjson.String {
		p.origin = f.origin.Str
	}
	return nil
}

// readReferences checks prev_events and auth_events (see references) and
// sets them on p.
func (p *PDU) readReferences(f *fields) error {
	rules := p.rules
	var err error
	if p.prev, err = references(rules, f.prev, "prev_events", MaxPrevEvents, nil); err != nil {
		return err
	}
	p.auth, err = references(rules, f.auth, "auth_events", MaxAuthEvents, p.authBuf[:0])
	return err
}

// isV12Create reports whether p (its type read) is a create event of a
// room version whose room ID derives from the create event.
func (p *PDU) isV12Create() bool {
	return p.rules.RoomIDFromCreateEvent && p.typ == "m.room.create"
}

// readIdentifiers checks the identifiers whose presence or format depends
// on the room version, room_id and the redacted event's ID, and sets them
// on p. The event's own ID is setEventID's.
func (p *PDU) readIdentifiers(f *fields) error {
	rules := p.rules
	if p.isV12Create() {
		if f.roomID.Exists() {
			return fieldErr(ErrBadField, "room_id", "a room version %s create event has no room_id", rules.ID)
		}
	} else {
		var err error
		if p.roomID, err = shortString(f.roomID, "room_id"); err != nil {
			return err
		}
		rid, err := id.ParseRoomID(p.roomID)
		if err != nil {
			return fieldErr(ErrBadField, "room_id", "%v", err)
		}
		if _, hasServer := rid.Server(); hasServer == rules.RoomIDFromCreateEvent {
			return fieldErr(ErrBadField, "room_id", "wrong room ID format for room version %s", rules.ID)
		}
	}
	if p.typ != "m.room.redaction" {
		return nil
	}
	r, field := f.redacts, "redacts"
	if rules.RedactsInContent {
		r, field = f.content.Get("redacts"), "content.redacts"
	}
	if !r.Exists() {
		if !rules.RedactsInContent {
			return fieldErr(ErrMissingField, field, "required for m.room.redaction")
		}
		return nil
	}
	if r.Type != gjson.String {
		return fieldErr(ErrBadField, field, "not a string")
	}
	if err := checkEventIDFormat(rules, r.Str); err != nil {
		return fieldErr(ErrBadField, field, "%v", err)
	}
	p.redacts = r.Str
	return nil
}

// setEventID sets p's event ID: event_id from the JSON in room versions
// with server-generated IDs, otherwise the reference hash of the input,
// written after the JSON in env's buffer. A room version 12 create event
// also gets its room ID, derived from the event ID.
func (p *PDU) setEventID(f *fields, env *envelope) error {
	rules := p.rules
	if rules.EventIDFormat == roomversion.EventIDServerGenerated {
		var err error
		if p.eventID, err = shortString(f.eventID, "event_id"); err != nil {
			return err
		}
		if err := checkEventIDFormat(rules, p.eventID); err != nil {
			return fieldErr(ErrBadField, "event_id", "%v", err)
		}
		return nil
	}
	computed, err := hashing.EventID(*rules, env.raw)
	if err != nil {
		return fmt.Errorf("%w: computing the event ID: %w", ErrBadJSON, err)
	}
	env.buf.WriteString(computed)
	p.eventID = env.buf.String()[len(env.text):]
	if p.isV12Create() {
		p.roomID = "!" + p.eventID[1:]
	}
	return nil
}

// stringBytes returns the bytes of s without copying them (the views of
// the event's one copy of its JSON). The slice must never be written to:
// the accessors that return it say so.
func stringBytes(s string) []byte { return bytesconv.Bytes(s) }

func shortString(v gjson.Result, field string) (string, error) {
	if !v.Exists() {
		return "", fieldErr(ErrMissingField, field, "required")
	}
	if v.Type != gjson.String {
		return "", fieldErr(ErrBadField, field, "not a string")
	}
	if len(v.Str) > MaxFieldBytes {
		return "", fieldErr(ErrBadField, field, "longer than %d bytes", MaxFieldBytes)
	}
	return v.Str, nil
}

// integer reads a JSON integer within [lo, hi]. The canonical JSON check
// has already rejected floats in strict room versions; in lenient ones a
// number with a fraction is still not an integer.
func integer(v gjson.Result, field string, lo, hi int64) (int64, error) {
	if !v.Exists() {
		return 0, fieldErr(ErrMissingField, field, "required")
	}
	if v.Type != gjson.Number {
		return 0, fieldErr(ErrBadField, field, "not a number")
	}
	for _, c := range v.Raw {
		if c == '.' || c == 'e' || c == 'E' {
			return 0, fieldErr(ErrBadField, field, "not an integer")
		}
	}
	n := v.Int()
	if len(v.Raw) > 20 || n < lo || n > hi || (n == hi && v.Raw != fmt.Sprint(hi)) {
		return 0, fieldErr(ErrBadField, field, "%s is outside [%d, %d]", v.Raw, lo, hi)
	}
	return n, nil
}

// checkEventIDFormat checks that s is an event ID of the room version's
// format.
func checkEventIDFormat(rules *roomversion.Rules, s string) error {
	eid, err := id.ParseEventID(s)
	if err != nil {
		return err
	}
	ok := false
	switch rules.EventIDFormat {
	case roomversion.EventIDServerGenerated:
		ok = eid.IsServerForm()
	case roomversion.EventIDBase64:
		ok = eid.IsBase64Form()
	case roomversion.EventIDURLSafeBase64:
		ok = eid.IsURLSafeForm()
	}
	if !ok {
		return fmt.Errorf("%w %q: not in the %v format of room version %s", id.ErrInvalidEventID, s, rules.EventIDFormat, rules.ID)
	}
	return nil
}

// references reads prev_events or auth_events: a list of event IDs, or for
// room versions 1-2 a list of [event ID, {"sha256": hash}] pairs. The IDs
// are appended to out.
func references(rules *roomversion.Rules, v gjson.Result, field string, max int, out []string) ([]string, error) {
	if !v.Exists() {
		return nil, fieldErr(ErrMissingField, field, "required")
	}
	if !v.IsArray() {
		return nil, fieldErr(ErrBadField, field, "not a list")
	}
	var err error
	n := 0
	v.ForEach(func(_, e gjson.Result) bool {
		n++
		if n > max {
			err = fieldErr(ErrBadField, field, "more than %d entries", max)
			return false
		}
		var s gjson.Result
		if rules.EventReferencesWithHashes {
			pair := e.Array()
			if !e.IsArray() || len(pair) != 2 || pair[0].Type != gjson.String || !pair[1].IsObject() {
				err = fieldErr(ErrBadField, field, "entries must be [event ID, {hashes}] pairs")
				return false
			}
			s = pair[0]
		} else {
			if e.Type != gjson.String {
				err = fieldErr(ErrBadField, field, "entries must be event ID strings")
				return false
			}
			s = e
		}
		if e := checkEventIDFormat(rules, s.Str); e != nil {
			err = fieldErr(ErrBadField, field, "%v", e)
			return false
		}
		for _, prev := range out {
			if prev == s.Str {
				err = fieldErr(ErrBadField, field, "%q listed twice", s.Str)
				return false
			}
		}
		out = append(out, s.Str)
		return true
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Rules returns the room version rules the event was parsed with.
func (p *PDU) Rules() roomversion.Rules { return *p.rules }

// RulesRef returns the room version rules without copying them: events
// parsed with the same rules share one copy. Callers must not modify it.
func (p *PDU) RulesRef() *roomversion.Rules { return p.rules }

// JSON returns the event as received. Callers must not modify it.
func (p *PDU) JSON() []byte { return p.raw }

// EventID returns the event ID.
func (p *PDU) EventID() string { return p.eventID }

// RoomID returns the room ID; for a room version 12 create event, the one
// it defines.
func (p *PDU) RoomID() string { return p.roomID }

// Type returns the event type.
func (p *PDU) Type() string { return p.typ }

// Sender returns the sender's user ID.
func (p *PDU) Sender() string { return p.sender }

// StateKey returns the state key and whether the event has one (is a state
// event).
func (p *PDU) StateKey() (string, bool) { return p.stateKey, p.isState }

// IsState reports whether the event has a state key.
func (p *PDU) IsState() bool { return p.isState }

// Depth returns the depth.
func (p *PDU) Depth() int64 { return p.depth }

// OriginServerTS returns origin_server_ts in milliseconds since the epoch.
func (p *PDU) OriginServerTS() int64 { return p.ts }

// PrevEventIDs returns the IDs of the previous events. Callers must not
// modify the slice.
func (p *PDU) PrevEventIDs() []string { return p.prev }

// AuthEventIDs returns the IDs of the auth events. Callers must not modify
// the slice.
func (p *PDU) AuthEventIDs() []string { return p.auth }

// Redacts returns the ID of the event a redaction redacts (top-level
// redacts, or content.redacts from room version 11), or "".
func (p *PDU) Redacts() string { return p.redacts }

// Content returns the raw content object. Callers must not modify it.
func (p *PDU) Content() []byte { return p.content }

// Membership returns content.membership of an m.room.member event, or "".
func (p *PDU) Membership() string { return p.member }

// Unsigned returns the raw unsigned object, or nil.
func (p *PDU) Unsigned() []byte { return p.unsigned }

// Origin returns the deprecated top-level origin, or "".
func (p *PDU) Origin() string { return p.origin }

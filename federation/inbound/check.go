package inbound

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Outcome is the verdict on a received PDU.
type Outcome int

// The outcomes, in the spec's terms.
const (
	// Accepted: every check passed (possibly after redaction).
	Accepted Outcome = iota
	// Dropped: bad format or signatures; the event must not be stored.
	Dropped
	// Rejected: the event failed auth against its auth events or the
	// state before it; it may be stored as rejected, never shown to
	// clients, never a prev event of ours, and it changes no state.
	Rejected
	// SoftFailed: the event passed steps 4-5 but not the room's current
	// state: stored and used in state resolution, not shown to clients
	// and not a forward extremity.
	SoftFailed
	// Undecided: the checks could not run to the end (missing auth
	// events, a failing Room); nothing is decided, try again later.
	Undecided
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Dropped:
		return "dropped"
	case Rejected:
		return "rejected"
	case SoftFailed:
		return "soft-failed"
	case Undecided:
		return "undecided"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Sentinels wrapped by Result.Err, one per failing step.
var (
	ErrFormat            = errors.New("inbound: bad event format")
	ErrSignature         = errors.New("inbound: bad signatures")
	ErrAuthEvents        = errors.New("inbound: not allowed by its auth events")
	ErrStateBefore       = errors.New("inbound: not allowed by the state before it")
	ErrCurrentState      = errors.New("inbound: not allowed by the current state")
	ErrMissingAuthEvents = errors.New("inbound: auth events unknown")
	ErrRoom              = errors.New("inbound: room lookup failed")
	ErrSenderNotOrigin   = errors.New("inbound: sender is not on the origin server")
	ErrWrongRoom         = errors.New("inbound: event is for another room")
)

// Result is the verdict on one PDU.
type Result struct {
	// Event is the parsed event, in its redacted form when Redacted; nil
	// when the format check failed.
	Event *event.PDU
	// EventID is the event's ID when it could be computed, for the
	// transaction response.
	EventID string
	Outcome Outcome
	// Redacted: the content hash did not match (step 3).
	Redacted bool
	// Err says why, for every outcome but Accepted. It wraps one of this
	// package's sentinels and the error of the failing check.
	Err error
	// Missing lists the unknown auth events when Err wraps
	// ErrMissingAuthEvents.
	Missing []string
}

// Room is what steps 4-6 read from the caller's storage.
type Room interface {
	// Events returns the events with the given IDs in order, nil for an
	// unknown one (as stateres.Provider does). Rejected events may be
	// returned; implement Rejected to say which.
	Events(ctx context.Context, ids []string) ([]*event.PDU, error)
	// StateBefore returns the state before ev: the state after its single
	// prev event, or the resolution of the states after its prev events.
	StateBefore(ctx context.Context, ev *event.PDU) (eventauth.State, error)
	// CurrentState returns the room's current state.
	CurrentState(ctx context.Context) (eventauth.State, error)
}

// RejectionTracker is implemented by Rooms that know which events were
// rejected: an event citing a rejected auth event is rejected.
type RejectionTracker interface {
	Rejected(eventID string) bool
}

// Checker runs the receipt checks. Keys is required.
type Checker struct {
	// Keys gives the servers' keys (keys.Ring in production).
	Keys signing.KeyLookup
	// VerifyOptions for the signatures; the zero value (crypto/ed25519
	// for every signature) is what a server deciding room membership
	// should use.
	VerifyOptions signing.VerifyOptions
}

// Check runs all six checks on one PDU of a room of version rules.
func (c *Checker) Check(ctx context.Context, rules roomversion.Rules, room Room, raw []byte) Result {
	r := c.Verify(ctx, rules, [][]byte{raw})[0]
	if r.Outcome != Accepted {
		return r
	}
	a := c.Authorize(ctx, room, r.Event)
	a.Redacted = r.Redacted
	return a
}

// Verify runs steps 1-3 (format, signatures, content hash) on PDUs of one
// room version, the signatures of all of them at once. A result is
// Accepted (passed so far, possibly Redacted) or Dropped.
func (c *Checker) Verify(ctx context.Context, rules roomversion.Rules, raws [][]byte) []Result {
	out := make([]Result, len(raws))
	var toVerify [][]byte
	var at []int
	for i, raw := range raws {
		ev, err := event.Parse(rules, raw)
		if err != nil {
			out[i] = Result{Outcome: Dropped, Err: fmt.Errorf("%w: %w", ErrFormat, err)}
			continue
		}
		out[i] = Result{Event: ev, EventID: ev.EventID()}
		toVerify = append(toVerify, ev.JSON())
		at = append(at, i)
	}
	if len(toVerify) == 0 {
		return out
	}
	errs := signing.VerifyEventsWithOptions(ctx, rules, toVerify, c.Keys, c.VerifyOptions)
	for j, err := range errs {
		r := &out[at[j]]
		switch {
		case err == nil:
		case errors.Is(err, hashing.ErrContentHashMismatch) || errors.Is(err, hashing.ErrMissingContentHash):
			red, rerr := hashing.Redact(rules, r.Event.JSON())
			var ev *event.PDU
			if rerr == nil {
				ev, rerr = event.Parse(rules, red)
			}
			if rerr != nil {
				*r = Result{EventID: r.EventID, Outcome: Dropped, Err: fmt.Errorf("%w: redacting after %v: %w", ErrFormat, err, rerr)}
				continue
			}
			r.Event, r.Redacted = ev, true
		default:
			*r = Result{Event: r.Event, EventID: r.EventID, Outcome: Dropped, Err: fmt.Errorf("%w: %w", ErrSignature, err)}
		}
	}
	return out
}

// Authorize runs steps 4-6 on an event that passed [Checker.Verify].
func (c *Checker) Authorize(ctx context.Context, room Room, ev *event.PDU) Result {
	res := Result{Event: ev, EventID: ev.EventID()}
	undecided := func(err error) Result {
		res.Outcome, res.Err = Undecided, err
		return res
	}
	rules := ev.RulesRef()
	ids := ev.AuthEventIDs()
	createID := ""
	if !rules.CreateEventInAuthEvents && ev.Type() != "m.room.create" {
		// From room version 12 the create event is not cited; its ID is
		// the room ID with "$" for "!".
		createID = "$" + ev.RoomID()[1:]
		ids = append(append(make([]string, 0, len(ids)+1), ids...), createID)
	}
	evs, err := room.Events(ctx, ids)
	if err != nil {
		return undecided(fmt.Errorf("%w: %w", ErrRoom, err))
	}
	if len(evs) != len(ids) {
		return undecided(fmt.Errorf("%w: Events returned %d events for %d IDs", ErrRoom, len(evs), len(ids)))
	}
	var opts eventauth.Options
	auth := make([]*event.PDU, 0, len(evs))
	for i, e := range evs {
		if e == nil {
			res.Missing = append(res.Missing, ids[i])
			continue
		}
		if e.EventID() != ids[i] {
			return undecided(fmt.Errorf("%w: Events returned %s for %s", ErrRoom, e.EventID(), ids[i]))
		}
		if ids[i] == createID {
			opts.Create = e
			continue
		}
		auth = append(auth, e)
	}
	if len(res.Missing) > 0 {
		return undecided(fmt.Errorf("%w: %v", ErrMissingAuthEvents, res.Missing))
	}
	if rt, ok := room.(RejectionTracker); ok {
		opts.Rejected = rt.Rejected
	}
	if _, err := eventauth.CheckAuthEvents(ev, auth, opts); err != nil {
		if errors.Is(err, eventauth.ErrMissingAuthEvent) || errors.Is(err, eventauth.ErrBadState) {
			return undecided(fmt.Errorf("%w: %w", ErrAuthEvents, err))
		}
		res.Outcome, res.Err = Rejected, fmt.Errorf("%w: %w", ErrAuthEvents, err)
		return res
	}
	if ev.Type() == "m.room.create" {
		// A create event has no state before it.
		return res
	}
	before, err := room.StateBefore(ctx, ev)
	if err != nil {
		return undecided(fmt.Errorf("%w: state before %s: %w", ErrRoom, ev.EventID(), err))
	}
	if err := eventauth.Check(ev, before); err != nil {
		if errors.Is(err, eventauth.ErrBadState) {
			return undecided(fmt.Errorf("%w: %w", ErrStateBefore, err))
		}
		res.Outcome, res.Err = Rejected, fmt.Errorf("%w: %w", ErrStateBefore, err)
		return res
	}
	current, err := room.CurrentState(ctx)
	if err != nil {
		return undecided(fmt.Errorf("%w: current state: %w", ErrRoom, err))
	}
	if err := eventauth.Check(ev, current); err != nil {
		if errors.Is(err, eventauth.ErrBadState) {
			return undecided(fmt.Errorf("%w: %w", ErrCurrentState, err))
		}
		res.Outcome, res.Err = SoftFailed, fmt.Errorf("%w: %w", ErrCurrentState, err)
	}
	return res
}

// CheckOrigin reports whether ev's sender is a user of origin (the
// server that authenticated the request) and ev is for roomID. Errors
// wrap [ErrSenderNotOrigin] or [ErrWrongRoom].
func CheckOrigin(ev *event.PDU, origin, roomID string) error {
	uid, err := id.ParseUserID(ev.Sender())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSenderNotOrigin, err)
	}
	if uid.Server().String() != origin {
		return fmt.Errorf("%w: sender %s, origin %s", ErrSenderNotOrigin, ev.Sender(), origin)
	}
	if roomID != "" && ev.RoomID() != roomID {
		return fmt.Errorf("%w: %s, not %s", ErrWrongRoom, ev.RoomID(), roomID)
	}
	return nil
}

// Response builds the "pdus" object of a /send answer from results: {}
// for an accepted or soft-failed PDU (the spec does not tell the sender
// about soft failure), {"error": reason} for the others. PDUs without an
// event ID (unparseable) are left out.
func Response(results []Result) map[string]map[string]string {
	out := make(map[string]map[string]string, len(results))
	for _, r := range results {
		if r.EventID == "" {
			continue
		}
		switch r.Outcome {
		case Accepted, SoftFailed:
			out[r.EventID] = map[string]string{}
		default:
			msg := r.Outcome.String()
			if r.Err != nil {
				msg = r.Err.Error()
			}
			out[r.EventID] = map[string]string{"error": msg}
		}
	}
	return out
}

package stateres

import "errors"

// Sentinel errors. Errors returned by [Resolve] wrap one of these (or the
// context's error, or an error of the caller's [Provider]).
var (
	// ErrMissingEvent: an event named by a state set or an auth_events list
	// could not be loaded from the provider.
	ErrMissingEvent = errors.New("stateres: missing event")
	// ErrAuthCycle: the auth_events of the events involved form a cycle
	// (impossible with hash-based event IDs, possible with forged events in
	// room versions 1 and 2).
	ErrAuthCycle = errors.New("stateres: auth events form a cycle")
	// ErrTooManyEvents: the resolution would load more events than
	// Options.MaxEvents allows.
	ErrTooManyEvents = errors.New("stateres: too many events")
	// ErrBadInput: the state sets or the events are not usable (no state
	// sets, an event whose type or state key does not match its state set
	// entry, events from another room, an unsupported algorithm).
	ErrBadInput = errors.New("stateres: bad input")
)

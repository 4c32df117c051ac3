// Package roomtest builds Matrix rooms for tests: rooms of any room version
// (1 to 12) in a few lines, with events that are correctly built, hashed,
// signed and authorised, or deliberately spoiled for negative tests.
//
// # Rooms
//
// New creates a room as a user (create event, the creator's join, power
// levels and join rules) and returns a Room, whose embedded Branch is the
// room's main line of history:
//
//	r := roomtest.New(t, roomtest.Options{Version: "11"})
//	r.Join("@bob:b.test")
//	r.SetPowerLevel(roomtest.DefaultCreator, "@bob:b.test", 50)
//	msg := r.Message("@bob:b.test", "hello")
//	r.Redact(roomtest.DefaultCreator, msg.EventID())
//
// Branch has a method per kind of event (Join, Invite, Leave, Kick, Ban,
// Unban, Knock, SetPowerLevel, SetPowerLevels, SetJoinRule, SetState,
// Message, Redact) and Add/Send for any other. Each event is built with
// event.Builder: it cites the branch's latest event as prev_events and the
// auth events that eventauth.AuthEventsNeeded selects from the branch's
// state, is signed by the key of its sender's server (from the room's
// Keyring), and must pass eventauth.Check against the branch's state: an
// event the rules reject fails the test (Send returns an error wrapping
// ErrNotAllowed) unless Event.Unchecked is set.
//
// Fork starts a second branch from the same event; the branches then grow
// apart. Merge joins branches again after the test resolved their states
// (typically with stateres.Resolve, which takes a Room as its Provider).
//
// A Room keeps every event by ID (Event, All, Events), the state before and
// after each event (StateBefore, StateAfter), auth events and auth chains
// (AuthEvents, AuthChain). It implements stateres.Provider,
// stateres.RejectionTracker and signing.KeyLookup, so the library's checks
// run against it directly. It is safe for concurrent use, so fake servers
// (package federation/federationtest) can serve it while a test adds events.
//
// # Keys
//
// A Keyring derives each server's ed25519 key from its name (key ID
// KeyID), so rooms that share a keyring, or not, agree on every server's
// key. The seeds are public: these keys are for tests only. AddPublic
// records keys of servers the kit does not sign for, such as the server
// under test.
//
// # Forgeries
//
// Branch.Forge builds the branch's next event spoiled in one of the ways
// listed by Forgeries, without recording it: a wrong content hash, a
// corrupted signature, a signature by the wrong server, a sender of another
// server than the one that signed, auth events of another room, a depth
// out of range, an event over 65,536 bytes. Each Forgery's comment names the
// error the library rejects it with; TestForgeriesRejected checks each in
// every room version.
//
// # Errors and tests
//
// Methods that fail a test call TB.Fatalf on the TB given to New, which
// must then be the running test's (call them from its goroutine); with a
// nil TB they panic, for Examples and benchmark setup. Create and Send
// return errors instead.
//
// Not for production: the keys are public, event IDs of room versions 1
// and 2 and room IDs are random, and timestamps come from a counter that
// starts at Options.StartTS.
package roomtest

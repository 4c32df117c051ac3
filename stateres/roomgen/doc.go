// Package roomgen builds synthetic Matrix rooms with forked history, for
// tests and benchmarks of state resolution: a [Room] holds every event (and
// serves them as a stateres.Provider), a [Branch] is one line of history
// with its own state. Events are built with event.Builder, signed with a
// fixed test key, and checked with eventauth.Check against the branch's
// state unless sent with [Branch.Force].
//
// [Forked] gives the benchmark shape (two branches writing the same keys,
// every tenth event a power levels change) and [Random] random rooms for
// property and differential tests.
//
// Not for production: the signing key is a constant and event IDs of room
// versions 1 and 2 are random.
package roomgen

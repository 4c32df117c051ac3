// Package sender delivers a homeserver's PDUs and EDUs to other servers:
// the outbound half of the server-server API's "Transactions" section
// (PUT /_matrix/federation/v1/send/{txnId}).
//
// A [Sender] keeps one queue, served by one goroutine, per destination. It
// batches at most 50 PDUs and 100 EDUs per transaction, keeps one
// transaction in flight per destination, and retries a failed transaction
// with the same transaction ID and the same PDUs until the destination
// answers 200, as the spec requires, waiting between attempts as a
// federation.Backoff says.
//
// # Durability
//
// PDUs are not held by the sender: it reads them, in order, from a [Log]
// the caller owns (a table of (destination, position, event) rows, a log
// filtered per destination, ...), each with a position that increases per
// destination. What each destination acknowledged is recorded through a
// [PositionStore]: before the first attempt of a transaction with PDUs the
// sender stores its ID and last position, and after the 200 it stores the
// new acknowledged position. After a restart, a destination's goroutine
// (started by [Sender.Notify]) resends the transaction that was in flight
// with the same ID and the same PDUs, then carries on from the
// acknowledged position: nothing a destination acknowledged is sent again
// and nothing is lost. A destination that was down gets everything once
// it is back, in batches: at its next retry, or at once when the caller
// calls [Sender.Wake] on hearing from it (an authenticated request from
// that server), as Synapse and Dendrite do.
//
// EDUs (typing, receipts, presence, to-device...) are kept in memory only,
// at most [Options].MaxQueuedEDUs per destination (the oldest are dropped
// first and counted): they are ephemeral, as in other homeservers.
//
// # Memory
//
// A destination holds at most one batch (50 PDUs, 100 EDUs) and its EDU
// queue in memory; its goroutine ends when its queue is empty and starts
// again on the next Notify, Wake or EDU.
//
// # Out of scope
//
// Which servers get an event (the servers with a joined member in the
// state before it, minus ourselves) is the caller's decision, taken when
// it writes to its Log. Catch-up by sending only the newest event per room
// after a very long outage (Synapse) is not done: a destination gets every
// PDU.
//
// # Errors
//
// For /send every failure counts towards the backoff, 4xx answers
// included (a reachable server that refuses the transaction would
// otherwise be retried in a loop); per-PDU errors in a 200 answer are the
// destination's verdicts and are reported, not retried.
package sender

// Package missing fills gaps in a room's DAG from other servers, within
// fixed bounds: the server-server API's "Backfilling and retrieving
// missing events" (POST get_missing_events) and "Retrieving events"
// (GET state_ids, GET event, GET state).
//
// [Walk] asks servers, in order, for the events between what we have and
// an event whose prev events we lack, round after round, until no prev
// event is missing or a limit (events, rounds, time) is reached. [Fetch]
// gets the state at an event: the state IDs, then each event we lack
// (or the whole /state when many are missing). [StateBefore] resolves the
// states after an event's prev events with stateres.Resolve.
//
// Nothing here trusts what it fetched beyond its format: every event
// returned must still go through the receipt checks (package
// federation/inbound) before use. Events not of the room, malformed ones
// and answers over the limits are left out and counted, never followed.
//
// # Out of scope
//
// Storing events, choosing which servers to ask (typically the origin,
// then the sender's server, then other joined servers), and backfill for
// clients.
package missing

// Package stateres implements Matrix state resolution: the original
// algorithm of room version 1, state resolution v2 (room versions 2 to 11)
// and v2.1 (room version 12), chosen by [roomversion.Rules.StateResolution].
//
// Spec: "Room Versions" → room version 1 "State resolution", room version 2
// "State resolution" (content/rooms/fragments/v2-state-res.md) and room
// version 12 "State resolution" (v2.1: iterative auth checks start from an
// empty state map, and the conflicted state subgraph joins the full
// conflicted set), as of spec v1.16.
//
// [Resolve] takes the state sets to resolve (maps from (type, state_key) to
// event ID) and a [Provider] that loads events by ID. The algorithm follows
// the spec's steps: unconflicted state map and conflicted state set, auth
// difference, full conflicted set, reverse topological power ordering
// (Kahn's algorithm; ties broken by the sender's power level from the
// event's own auth events, descending, then origin_server_ts ascending, then
// event ID ascending), iterative auth checks with [eventauth.Check] (state
// entries missing from the partial state come from the event's own
// non-rejected auth events), mainline ordering of the remaining events
// (mainline position, then origin_server_ts, then event ID) and the final
// merge with the unconflicted state map.
//
// Events are indexed by integers for the duration of one resolution; Kahn's
// algorithm uses a heap and mainline positions are memoised, so the cost is
// near-linear in the number of events involved. Without help the auth chains
// of every event in the state sets are loaded (the room's auth history); a
// provider that keeps auth chains indexed implements [AuthChainIndex], and
// then only the full conflicted set and the power levels events its
// mainline walks touch are loaded.
//
// Out of scope: computing the state sets themselves (the state after each
// prev event), and deciding which events are rejected (a provider reports
// them through [RejectionTracker]).
//
// Security: the inputs are untrusted. Events of another room, state entries
// naming an event of another type or state key, and auth events that form a
// cycle (possible with the arbitrary event IDs of room versions 1 and 2)
// are errors, never repaired; [Resolver.MaxEvents] bounds the events one
// resolution loads. Recursion is never used, so deep auth chains cannot
// exhaust the stack.
package stateres

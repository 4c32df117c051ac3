package federationapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/hashing"
)

// Bounds of the reads other servers can ask for.
const (
	maxBackfill      = 100
	maxMissingEvents = 50
)

// maySee reports whether origin may see ev under the room's history
// visibility at the event (eventauth.ServerMaySee). Events whose state we
// do not know (outliers) are visible, as at the peers.
func (a *API) maySee(ctx context.Context, origin string, ev *event.PDU) (bool, error) {
	before, err := a.rs.StateBeforeEvent(ctx, ev.EventID())
	if errors.Is(err, roomserver.ErrUnknownEvent) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return eventauth.ServerMaySee(ev, before, origin), nil
}

// visibleForm returns the event as origin may receive it: whole, or
// redacted when history visibility hides it.
func (a *API) visibleForm(ctx context.Context, origin string, ev *event.PDU) (json.RawMessage, error) {
	ok, err := a.maySee(ctx, origin, ev)
	if err != nil {
		return nil, err
	}
	if ok {
		return ev.JSON(), nil
	}
	return hashing.Redact(ev.Rules(), ev.JSON())
}

func (a *API) txnOf(pdus []json.RawMessage) map[string]any {
	return map[string]any{"origin": a.serverName, "origin_server_ts": time.Now().UnixMilli(), "pdus": rawEvents(pdus)}
}

// roomEvent loads an event of the room, or 404.
func (a *API) roomEvent(roomID, eventID string) (*event.PDU, error) {
	ev, err := a.rs.Event(eventID)
	if errors.Is(err, roomserver.ErrUnknownEvent) || (err == nil && roomID != "" && ev.RoomID() != roomID) {
		return nil, notFound("unknown event")
	}
	return ev, err
}

func (a *API) getEvent(w http.ResponseWriter, r *http.Request, origin string) error {
	ev, err := a.roomEvent("", r.PathValue("eventId"))
	if err != nil {
		return err
	}
	if _, err := a.requireInRoom(ev.RoomID(), origin); err != nil {
		return err
	}
	ok, err := a.maySee(r.Context(), origin, ev)
	if err != nil {
		return err
	}
	if !ok {
		return forbidden("server %s may not see this event", origin)
	}
	writeRaw(w, a.txnOf([]json.RawMessage{ev.JSON()}))
	return nil
}

// state answers /state and /state_ids: the state before event_id and the
// auth chain of that state.
func (a *API) state(idsOnly bool) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, origin string) error {
		roomID := r.PathValue("roomId")
		if _, err := a.requireInRoom(roomID, origin); err != nil {
			return err
		}
		eventID := r.URL.Query().Get("event_id")
		if eventID == "" {
			return httpMissing("event_id")
		}
		ev, err := a.roomEvent(roomID, eventID)
		if err != nil {
			return err
		}
		if ok, err := a.maySee(r.Context(), origin, ev); err != nil {
			return err
		} else if !ok {
			return forbidden("server %s may not see this event", origin)
		}
		before, err := a.rs.StateBeforeEvent(r.Context(), eventID)
		if errors.Is(err, roomserver.ErrUnknownEvent) {
			return notFound("the state at this event is not known")
		}
		if err != nil {
			return err
		}
		stateEvs, ids, chain, err := a.stateWithChain(before)
		if err != nil {
			return err
		}
		if idsOnly {
			chainIDs := make([]string, 0, len(chain))
			for _, c := range chain {
				chainIDs = append(chainIDs, c.EventID())
			}
			if ids == nil {
				ids = []string{}
			}
			writeRaw(w, map[string]any{"pdu_ids": ids, "auth_chain_ids": chainIDs})
			return nil
		}
		writeRaw(w, map[string]any{"pdus": rawEvents(pdusOf(stateEvs)), "auth_chain": rawEvents(pdusOf(chain))})
		return nil
	}
}

func (a *API) eventAuth(w http.ResponseWriter, r *http.Request, origin string) error {
	roomID := r.PathValue("roomId")
	if _, err := a.requireInRoom(roomID, origin); err != nil {
		return err
	}
	ev, err := a.roomEvent(roomID, r.PathValue("eventId"))
	if err != nil {
		return err
	}
	if ok, err := a.maySee(r.Context(), origin, ev); err != nil {
		return err
	} else if !ok {
		return forbidden("server %s may not see this event", origin)
	}
	chain, err := a.rs.AuthChain([]string{ev.EventID()})
	if err != nil {
		return err
	}
	writeRaw(w, map[string]any{"auth_chain": rawEvents(pdusOf(chain))})
	return nil
}

// walkBack collects events from the starting IDs backwards over
// prev_events, breadth first, skipping stop, up to limit events.
func (a *API) walkBack(roomID string, start []string, stop map[string]bool, includeStart bool, limit int) []*event.PDU {
	seen := map[string]bool{}
	var out []*event.PDU
	queue := []string{}
	for _, id := range start {
		if includeStart {
			queue = append(queue, id)
			continue
		}
		seen[id] = true
		if ev, err := a.rs.Event(id); err == nil && ev.RoomID() == roomID {
			queue = append(queue, ev.PrevEventIDs()...)
		}
	}
	for len(queue) > 0 && len(out) < limit {
		id := queue[0]
		queue = queue[1:]
		if seen[id] || stop[id] {
			continue
		}
		seen[id] = true
		ev, err := a.rs.Event(id)
		if err != nil || ev.RoomID() != roomID {
			continue
		}
		out = append(out, ev)
		queue = append(queue, ev.PrevEventIDs()...)
	}
	return out
}

func (a *API) backfill(w http.ResponseWriter, r *http.Request, origin string) error {
	roomID := r.PathValue("roomId")
	if _, err := a.requireInRoom(roomID, origin); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		return httpMissing("limit")
	}
	if len(q["v"]) == 0 {
		return httpMissing("v")
	}
	evs := a.walkBack(roomID, q["v"], nil, true, min(limit, maxBackfill))
	slices.SortStableFunc(evs, func(x, y *event.PDU) int { return int(y.Depth() - x.Depth()) })
	out := make([]json.RawMessage, 0, len(evs))
	for _, ev := range evs {
		v, err := a.visibleForm(r.Context(), origin, ev)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeRaw(w, a.txnOf(out))
	return nil
}

func (a *API) getMissingEvents(w http.ResponseWriter, r *http.Request, origin string) error {
	roomID := r.PathValue("roomId")
	if _, err := a.requireInRoom(roomID, origin); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req struct {
		Earliest []string `json:"earliest_events"`
		Latest   []string `json:"latest_events"`
		Limit    int      `json:"limit"`
		MinDepth int64    `json:"min_depth"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return badJSON("%v", err)
	}
	if req.Limit <= 0 {
		req.Limit = 10
	}
	stop := map[string]bool{}
	for _, id := range req.Earliest {
		stop[id] = true
	}
	evs := a.walkBack(roomID, req.Latest, stop, false, min(req.Limit, maxMissingEvents))
	slices.SortStableFunc(evs, func(x, y *event.PDU) int { return int(x.Depth() - y.Depth()) })
	out := make([]json.RawMessage, 0, len(evs))
	for _, ev := range evs {
		if ev.Depth() < req.MinDepth {
			continue
		}
		v, err := a.visibleForm(r.Context(), origin, ev)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	writeRaw(w, map[string]any{"events": out})
	return nil
}

// stateWithChain lists the events of a state by depth, with their IDs, and
// the auth chain of those events and of the events named by extra: the
// answer of /state, /state_ids and send_join.
func (a *API) stateWithChain(state eventauth.StateMap, extra ...string) (evs []*event.PDU, ids []string, chain []*event.PDU, err error) {
	for _, p := range state {
		evs = append(evs, p)
		ids = append(ids, p.EventID())
	}
	slices.SortFunc(evs, func(x, y *event.PDU) int { return int(x.Depth() - y.Depth()) })
	chain, err = a.rs.AuthChain(append(slices.Clip(ids), extra...))
	return evs, ids, chain, err
}

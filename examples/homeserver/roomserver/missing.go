package roomserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
)

// Bounds on filling a gap before an event from another server: one
// get_missing_events request for at most missingLimit events, then for
// each previous event still missing one state_ids request and at most
// maxStateFetch single-event fetches, all within fetchTimeout.
const (
	missingLimit  = 20
	maxStateFetch = 200
	fetchTimeout  = 30 * time.Second
)

// fetchMissing fills the gap before ev when some of its previous events
// are unknown (or known without state): it asks origin for the missing
// events (get_missing_events) and processes those whose own previous
// events are known; for a previous event still missing it fetches the
// state at it (state_ids, then the events it lacks) and stores it with
// that state. Failures are logged, not returned: ev is then rejected for
// its unknown previous events, and nothing loops.
func (rs *RoomServer) fetchMissing(ctx context.Context, rules roomversion.Rules, ev *event.PDU, origin string) error {
	if rs.remote == nil {
		return nil
	}
	missing := rs.missingPrevs(ev)
	if len(missing) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	ext, _, err := rs.LatestEvents(ev.RoomID())
	if err != nil {
		rs.log.Info("roomserver: event for a room we do not have", "event_id", ev.EventID(), "origin", origin)
		return nil
	}
	raw, err := rs.remote.GetMissingEvents(ctx, origin, ev.RoomID(), ext, []string{ev.EventID()}, missingLimit)
	if err != nil {
		rs.log.Warn("roomserver: get_missing_events failed", "origin", origin, "event_id", ev.EventID(), "err", err)
	} else {
		var fetched []*event.PDU
		for i, r := range gjson.GetBytes(raw, "events").Array() {
			if i >= missingLimit {
				break
			}
			p, err := rs.parseRemote(ctx, rules, ev.RoomID(), []byte(r.Raw))
			if err != nil {
				rs.log.Warn("roomserver: dropping a fetched event", "origin", origin, "err", err)
				continue
			}
			fetched = append(fetched, p)
		}
		sort.Slice(fetched, func(i, j int) bool { return fetched[i].Depth() < fetched[j].Depth() })
		for _, p := range fetched {
			if rs.HasState(p.EventID()) || len(rs.missingPrevs(p)) > 0 {
				continue
			}
			if err := rs.processFetched(ctx, rules, p, nil); err != nil {
				return err
			}
		}
	}
	for _, prev := range rs.missingPrevs(ev) {
		if err := rs.fetchWithState(ctx, rules, ev.RoomID(), prev, origin); err != nil {
			var rej *RejectedError
			if errors.As(err, &rej) || ctx.Err() != nil {
				rs.log.Warn("roomserver: could not fetch a previous event with its state", "origin", origin, "event_id", prev, "err", err)
				continue
			}
			return err
		}
	}
	return nil
}

// missingPrevs returns the previous events of ev not stored with state.
func (rs *RoomServer) missingPrevs(ev *event.PDU) []string {
	var out []string
	for _, p := range ev.PrevEventIDs() {
		if !rs.HasState(p) {
			out = append(out, p)
		}
	}
	return out
}

// fetchWithState fetches the event eventID and the state before it from
// origin, stores the state events it lacks as outliers and processes the
// event with that state.
func (rs *RoomServer) fetchWithState(ctx context.Context, rules roomversion.Rules, roomID, eventID, origin string) error {
	raw, err := rs.remote.StateIDs(ctx, origin, roomID, eventID)
	if err != nil {
		return &RejectedError{Err: fmt.Errorf("state_ids: %w", err)}
	}
	var resp struct {
		PDUIDs       []string `json:"pdu_ids"`
		AuthChainIDs []string `json:"auth_chain_ids"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return &RejectedError{Err: fmt.Errorf("state_ids: %w", err)}
	}
	var need []string
	for _, id := range append(append([]string{}, resp.AuthChainIDs...), resp.PDUIDs...) {
		if _, err := rs.Event(id); err != nil {
			need = append(need, id)
		}
	}
	if len(need) > maxStateFetch {
		return &RejectedError{Err: fmt.Errorf("state at %s lacks %d events (limit %d)", eventID, len(need), maxStateFetch)}
	}
	var outliers []*event.PDU
	for _, id := range need {
		p, err := rs.fetchOne(ctx, rules, roomID, id, origin)
		if err != nil {
			return err
		}
		outliers = append(outliers, p)
	}
	sort.Slice(outliers, func(i, j int) bool { return outliers[i].Depth() < outliers[j].Depth() })
	for _, p := range outliers {
		if err := rs.storeOutlier(rules, p); err != nil {
			return err
		}
	}
	target, err := rs.fetchOne(ctx, rules, roomID, eventID, origin)
	if err != nil {
		return err
	}
	if resp.PDUIDs == nil {
		resp.PDUIDs = []string{}
	}
	return rs.processFetched(ctx, rules, target, resp.PDUIDs)
}

// fetchOne fetches and checks one event (format, room, signatures).
func (rs *RoomServer) fetchOne(ctx context.Context, rules roomversion.Rules, roomID, eventID, origin string) (*event.PDU, error) {
	raw, err := rs.remote.GetEvent(ctx, origin, eventID)
	if err != nil {
		return nil, &RejectedError{Err: fmt.Errorf("fetching %s: %w", eventID, err)}
	}
	pdus := gjson.GetBytes(raw, "pdus").Array()
	if len(pdus) != 1 {
		return nil, &RejectedError{Err: fmt.Errorf("fetching %s: %d PDUs in the answer", eventID, len(pdus))}
	}
	p, err := rs.parseRemote(ctx, rules, roomID, []byte(pdus[0].Raw))
	if err != nil {
		return nil, &RejectedError{Err: err}
	}
	if p.EventID() != eventID {
		return nil, &RejectedError{Err: fmt.Errorf("asked for %s, got %s", eventID, p.EventID())}
	}
	return p, nil
}

// parseRemote parses an event fetched from another server and checks its
// room and signatures. An event whose content hash does not match is
// rejected here rather than redacted (simpler; the spec allows keeping the
// redacted form).
func (rs *RoomServer) parseRemote(ctx context.Context, rules roomversion.Rules, roomID string, raw []byte) (*event.PDU, error) {
	p, err := event.Parse(rules, raw)
	if err != nil {
		return nil, err
	}
	if p.RoomID() != roomID {
		return nil, fmt.Errorf("event %s is for room %s, not %s", p.EventID(), p.RoomID(), roomID)
	}
	if err := signing.VerifyEvent(ctx, rules, p.JSON(), rs); err != nil {
		return nil, fmt.Errorf("event %s: %w", p.EventID(), err)
	}
	return p, nil
}

// processFetched checks and stores an event fetched to fill a gap (with
// the given state before it, or the state after its previous events) and
// publishes it. It is not passed on to other servers.
func (rs *RoomServer) processFetched(ctx context.Context, rules roomversion.Rules, ev *event.PDU, stateBefore []string) error {
	out, err := rs.checkAndStore(ctx, rules, ev, stateBefore, false, nil)
	var rej *RejectedError
	if errors.As(err, &rej) {
		rs.log.Info("roomserver: rejected fetched event", "event_id", ev.EventID(), "err", rej.Err)
		return nil
	}
	if err != nil || out == nil {
		return err
	}
	return rs.publish(ctx, out)
}

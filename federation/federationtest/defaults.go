package federationtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// SendJoinResponse is the default body of a send_join answer (v2 API).
type SendJoinResponse struct {
	Origin         string            `json:"origin"`
	Event          json.RawMessage   `json:"event,omitempty"`
	State          []json.RawMessage `json:"state"`
	AuthChain      []json.RawMessage `json:"auth_chain"`
	MembersOmitted bool              `json:"members_omitted"`
	ServersInRoom  []string          `json:"servers_in_room,omitempty"`
}

// Default computes the default answer to req from the server's rooms:
//
//   - version: the implementation name "federationtest";
//   - make_join, make_knock, make_leave: a template built by the room's
//     main branch for the user (403 M_FORBIDDEN if the rules refuse it,
//     400 M_INCOMPATIBLE_ROOM_VERSION if the requester does not support
//     the room's version);
//   - send_join, send_knock, send_leave: the event is parsed, its
//     signatures verified and it is added to the room's main branch if the
//     rules allow it (roomtest.Branch.Receive); send_join answers with the
//     state before the join and its auth chain (SendJoinResponse);
//   - invite: the invite is verified and countersigned;
//   - send: each PDU of a known room is verified and received as for
//     send_join, with a per-PDU error otherwise; EDUs are only recorded;
//   - event, state, state_ids, event_auth, backfill, get_missing_events:
//     from the room's events (state and state_ids give the state before
//     the event, as Synapse does);
//   - query/profile: a displayname (the local part) for users of the server;
//   - query/directory: aliases set with SetAlias;
//   - publicRooms: the rooms whose join rule is public;
//   - user/devices, user/keys/query, user/keys/claim: no devices, no keys.
//
// Unknown rooms and events give 404 M_NOT_FOUND.
func (s *Server) Default(req *Request) Response {
	switch req.Endpoint {
	case Version:
		return JSON(200, map[string]any{"server": map[string]string{"name": "federationtest", "version": "0"}})
	case MakeJoin:
		return s.makeMembership(req, "join")
	case MakeKnock:
		return s.makeMembership(req, "knock")
	case MakeLeave:
		return s.makeMembership(req, "leave")
	case SendJoin:
		return s.sendMembership(req, "join")
	case SendKnock:
		return s.sendMembership(req, "knock")
	case SendLeave:
		return s.sendMembership(req, "leave")
	case Invite:
		return s.invite(req)
	case Send:
		return s.send(req)
	case GetEvent:
		for _, r := range s.Rooms() {
			if ev := r.Event(req.EventID); ev != nil {
				return JSON(200, s.pdus([]*event.PDU{ev}))
			}
		}
		return notFound("event")
	case State, StateIDs:
		r, ev, resp := s.roomEvent(req.RoomID, req.Query.Get("event_id"))
		if ev == nil {
			return resp
		}
		state := sortedState(r.StateBefore(ev.EventID()))
		var ids []string
		for _, e := range state {
			ids = append(ids, e.EventID())
		}
		chain := r.AuthChain(ids...)
		if req.Endpoint == StateIDs {
			return JSON(200, map[string]any{"pdu_ids": nonNil(ids), "auth_chain_ids": nonNil(eventIDs(chain))})
		}
		return JSON(200, map[string]any{"pdus": raws(state), "auth_chain": raws(chain)})
	case EventAuth:
		r, ev, resp := s.roomEvent(req.RoomID, req.EventID)
		if ev == nil {
			return resp
		}
		return JSON(200, map[string]any{"auth_chain": raws(r.AuthChain(ev.EventID()))})
	case Backfill:
		return s.backfill(req)
	case GetMissingEvents:
		return s.missingEvents(req)
	case QueryProfile:
		user := req.Query.Get("user_id")
		if !strings.HasSuffix(user, ":"+s.Name) || !strings.HasPrefix(user, "@") {
			return notFound("user")
		}
		name := strings.TrimPrefix(strings.TrimSuffix(user, ":"+s.Name), "@")
		switch req.Query.Get("field") {
		case "", "displayname":
			return JSON(200, map[string]string{"displayname": name})
		default:
			return JSON(200, map[string]string{})
		}
	case QueryDirectory:
		s.mu.Lock()
		roomID, ok := s.aliases[req.Query.Get("room_alias")]
		s.mu.Unlock()
		if !ok {
			return notFound("alias")
		}
		return JSON(200, map[string]any{"room_id": roomID, "servers": []string{s.Name}})
	case PublicRooms:
		chunk := []map[string]any{}
		for _, r := range s.Rooms() {
			st := r.State()
			if jr := st.JoinRules(); jr == nil || gjson.GetBytes(jr.Content(), "join_rule").Str != "public" {
				continue
			}
			joined := 0
			for _, m := range st.Members() {
				if m.Membership() == "join" {
					joined++
				}
			}
			chunk = append(chunk, map[string]any{"room_id": r.ID, "num_joined_members": joined,
				"world_readable": false, "guest_can_join": false})
		}
		return JSON(200, map[string]any{"chunk": chunk, "total_room_count_estimate": len(chunk)})
	case UserDevices:
		return JSON(200, map[string]any{"user_id": req.UserID, "stream_id": 0, "devices": []any{}})
	case UserKeysQuery:
		return JSON(200, map[string]any{"device_keys": map[string]any{}})
	case UserKeysClaim:
		return JSON(200, map[string]any{"one_time_keys": map[string]any{}})
	}
	return Error(http.StatusNotFound, "M_UNRECOGNIZED", "federationtest: no default for "+string(req.Endpoint))
}

func notFound(what string) Response {
	return Error(http.StatusNotFound, "M_NOT_FOUND", "federationtest: unknown "+what)
}

func forbidden(err error) Response {
	return Error(http.StatusForbidden, "M_FORBIDDEN", err.Error())
}

func (s *Server) roomEvent(roomID, eventID string) (*roomtest.Room, *event.PDU, Response) {
	r := s.Room(roomID)
	if r == nil {
		return nil, nil, notFound("room")
	}
	ev := r.Event(eventID)
	if ev == nil {
		return nil, nil, notFound("event")
	}
	return r, ev, Response{}
}

func (s *Server) pdus(evs []*event.PDU) map[string]any {
	return map[string]any{"origin": s.Name, "origin_server_ts": time.Now().UnixMilli(), "pdus": raws(evs)}
}

func raws(evs []*event.PDU) []json.RawMessage {
	out := make([]json.RawMessage, len(evs))
	for i, ev := range evs {
		out[i] = ev.JSON()
	}
	return out
}

func eventIDs(evs []*event.PDU) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.EventID()
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sortedState returns the events of a state map oldest first.
func sortedState(m eventauth.StateMap) []*event.PDU {
	out := make([]*event.PDU, 0, len(m))
	for _, ev := range m {
		out = append(out, ev)
	}
	slices.SortFunc(out, func(a, b *event.PDU) int {
		if a.Depth() != b.Depth() {
			return compare(a.Depth(), b.Depth())
		}
		return strings.Compare(a.EventID(), b.EventID())
	})
	return out
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) makeMembership(req *Request, membership string) Response {
	r := s.Room(req.RoomID)
	if r == nil {
		return notFound("room")
	}
	if membership != "leave" {
		vers := req.Query["ver"]
		if len(vers) == 0 {
			vers = []string{roomversion.All()[0].ID} // the spec: only version 1 when none is given
		}
		if !slices.Contains(vers, r.Rules.ID) {
			return JSON(http.StatusBadRequest, map[string]string{"errcode": "M_INCOMPATIBLE_ROOM_VERSION",
				"error": "federationtest: room version not supported by the requester", "room_version": r.Rules.ID})
		}
	}
	ev, err := r.Build(roomtest.Event{Type: "m.room.member", Sender: req.UserID, StateKey: roomtest.Str(req.UserID),
		Content: map[string]any{"membership": membership}})
	if err != nil {
		return forbidden(err)
	}
	tmpl := ev.JSON()
	for _, k := range []string{"signatures", "hashes", "event_id"} {
		if tmpl, err = sjson.DeleteBytes(tmpl, k); err != nil {
			return Error(http.StatusInternalServerError, "M_UNKNOWN", err.Error())
		}
	}
	return JSON(200, map[string]any{"room_version": r.Rules.ID, "event": json.RawMessage(tmpl)})
}

// verify parses raw as an event of r and verifies its signatures and
// hashes. The event is returned when it parses, whatever the verdict.
func (s *Server) verify(req *Request, r *roomtest.Room, raw []byte) (*event.PDU, error) {
	ev, err := event.Parse(r.Rules, raw)
	if err != nil {
		return nil, err
	}
	return ev, signing.VerifyEvent(req.Context, r.Rules, raw, s.lookup)
}

var errMismatch = errors.New("federationtest: event does not match the request")

func (s *Server) sendMembership(req *Request, membership string) Response {
	r := s.Room(req.RoomID)
	if r == nil {
		return notFound("room")
	}
	ev, err := s.verify(req, r, req.Body)
	if ev == nil {
		return Error(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	if err != nil {
		return forbidden(err)
	}
	if sk, _ := ev.StateKey(); ev.Type() != "m.room.member" || ev.Membership() != membership || sk != ev.Sender() || ev.EventID() != req.EventID {
		return Error(http.StatusBadRequest, "M_BAD_JSON", errMismatch.Error())
	}
	before := r.State()
	if err := r.Receive(ev); err != nil {
		return forbidden(err)
	}
	switch membership {
	case "join":
		state := sortedState(before)
		chain := r.AuthChain(append(eventIDs(state), ev.EventID())...)
		servers := map[string]bool{s.Name: true}
		for user, m := range before.Members() {
			if m.Membership() == "join" {
				servers[user[strings.IndexByte(user, ':')+1:]] = true
			}
		}
		resp := &SendJoinResponse{Origin: s.Name, Event: ev.JSON(), State: raws(state), AuthChain: raws(chain)}
		for name := range servers {
			resp.ServersInRoom = append(resp.ServersInRoom, name)
		}
		slices.Sort(resp.ServersInRoom)
		return JSON(200, resp)
	case "knock":
		var stripped []map[string]any
		for _, e := range []*event.PDU{before.Create(), before.JoinRules()} {
			if e != nil {
				sk, _ := e.StateKey()
				stripped = append(stripped, map[string]any{"type": e.Type(), "state_key": sk, "sender": e.Sender(),
					"content": json.RawMessage(e.Content())})
			}
		}
		return JSON(200, map[string]any{"knock_room_state": stripped})
	}
	return JSON(200, map[string]any{})
}

func (s *Server) invite(req *Request) Response {
	var body struct {
		Event       json.RawMessage `json:"event"`
		RoomVersion string          `json:"room_version"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return Error(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	rules, err := roomversion.Get(body.RoomVersion)
	if err != nil {
		return JSON(http.StatusBadRequest, map[string]string{"errcode": "M_INCOMPATIBLE_ROOM_VERSION",
			"error": err.Error(), "room_version": body.RoomVersion})
	}
	ev, err := event.Parse(rules, body.Event)
	if err == nil {
		err = signing.VerifyEvent(req.Context, rules, body.Event, s.lookup)
	}
	if err != nil {
		return Error(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	if sk, _ := ev.StateKey(); ev.Type() != "m.room.member" || ev.Membership() != "invite" ||
		!strings.HasSuffix(sk, ":"+s.Name) || ev.EventID() != req.EventID || ev.RoomID() != req.RoomID {
		return Error(http.StatusBadRequest, "M_BAD_JSON", errMismatch.Error())
	}
	signed, err := signing.SignEvent(rules, s.Name, s.Key.KeyID(), s.Key.PrivateKey(), body.Event)
	if err != nil {
		return Error(http.StatusInternalServerError, "M_UNKNOWN", err.Error())
	}
	return JSON(200, map[string]any{"event": json.RawMessage(signed)})
}

func (s *Server) send(req *Request) Response {
	var txn federation.Transaction
	if err := json.Unmarshal(req.Body, &txn); err != nil {
		return Error(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	results := map[string]any{}
	for _, raw := range txn.PDUs {
		r := s.Room(gjson.GetBytes(raw, "room_id").Str)
		if r == nil {
			continue
		}
		ev, err := s.verify(req, r, raw)
		if ev == nil {
			continue // no event ID to answer under
		}
		if err == nil {
			err = r.Receive(ev)
		}
		if err != nil {
			results[ev.EventID()] = map[string]string{"error": err.Error()}
		} else {
			results[ev.EventID()] = map[string]any{}
		}
	}
	return JSON(200, map[string]any{"pdus": results})
}

func (s *Server) backfill(req *Request) Response {
	r := s.Room(req.RoomID)
	if r == nil {
		return notFound("room")
	}
	limit, err := strconv.Atoi(req.Query.Get("limit"))
	if err != nil || limit <= 0 {
		return Error(http.StatusBadRequest, "M_INVALID_PARAM", "federationtest: bad limit")
	}
	// Breadth first from the given events (included) along prev_events.
	seen := map[string]bool{}
	queue := slices.Clone(req.Query["v"])
	var out []*event.PDU
	for len(queue) > 0 && len(out) < limit {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		ev := r.Event(id)
		if ev == nil {
			continue
		}
		out = append(out, ev)
		queue = append(queue, ev.PrevEventIDs()...)
	}
	return JSON(200, s.pdus(out))
}

func (s *Server) missingEvents(req *Request) Response {
	r := s.Room(req.RoomID)
	if r == nil {
		return notFound("room")
	}
	var body struct {
		Earliest []string `json:"earliest_events"`
		Latest   []string `json:"latest_events"`
		Limit    int      `json:"limit"`
		MinDepth int64    `json:"min_depth"`
	}
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return Error(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	if body.Limit <= 0 {
		body.Limit = 10
	}
	seen := map[string]bool{}
	for _, id := range body.Earliest {
		seen[id] = true
	}
	var queue []string
	for _, id := range body.Latest {
		seen[id] = true
		if ev := r.Event(id); ev != nil {
			queue = append(queue, ev.PrevEventIDs()...)
		}
	}
	var out []*event.PDU
	for len(queue) > 0 && len(out) < body.Limit {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		ev := r.Event(id)
		if ev == nil || ev.Depth() < body.MinDepth {
			continue
		}
		out = append(out, ev)
		queue = append(queue, ev.PrevEventIDs()...)
	}
	slices.SortFunc(out, func(a, b *event.PDU) int { return compare(a.Depth(), b.Depth()) })
	return JSON(200, map[string]any{"events": raws(out)})
}

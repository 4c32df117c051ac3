package federationapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/federation/membership"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// makeMembership answers make_join, make_leave and make_knock: a template
// of userID's member event with the given membership, built on the room's
// current extremities and checked against its current state before it is
// offered.
func (a *API) makeMembership(w http.ResponseWriter, r *http.Request, origin, m string) error {
	roomID, userID := r.PathValue("roomId"), r.PathValue("userId")
	state, err := a.roomState(roomID)
	if err != nil {
		return err
	}
	if err := checkACL(state, origin); err != nil {
		return err
	}
	if !a.residentIn(state) {
		return notFound("this server is not in the room")
	}
	rules, err := a.rs.RoomVersion(roomID)
	if err != nil {
		return err
	}
	var vers []string
	if m != membership.Leave {
		vers = r.URL.Query()["ver"]
	}
	if err := membership.CheckMakeRequest(membership.MakeRequest{Origin: origin, UserID: userID, Membership: m, Versions: vers, Rules: rules}); err != nil {
		return err
	}
	content, _ := json.Marshal(map[string]string{"membership": m})
	b, state, rules, err := a.rs.NewBuilder(roomID, "m.room.member", userID, &userID, content)
	if err != nil {
		return err
	}
	// Built and signed by us only to check it; the template offered is
	// that event without hashes and signatures.
	ev, err := b.Build(rules, a.serverName, a.key.KeyID(), a.key.PrivateKey())
	if err != nil {
		return err
	}
	if err := eventauth.Check(ev, state); err != nil {
		return forbidden("%s is not allowed: %v", m, err)
	}
	tmpl := ev.JSON()
	for _, k := range []string{"hashes", "signatures", "unsigned"} {
		tmpl, _ = sjson.DeleteBytes(tmpl, k)
	}
	writeRaw(w, map[string]any{"room_version": rules.ID, "event": json.RawMessage(tmpl)})
	return nil
}

func (a *API) makeJoin(w http.ResponseWriter, r *http.Request, origin string) error {
	return a.makeMembership(w, r, origin, membership.Join)
}

func (a *API) makeLeave(w http.ResponseWriter, r *http.Request, origin string) error {
	return a.makeMembership(w, r, origin, membership.Leave)
}

func (a *API) makeKnock(w http.ResponseWriter, r *http.Request, origin string) error {
	return a.makeMembership(w, r, origin, membership.Knock)
}

// residentIn reports whether one of our users is joined in state.
func (a *API) residentIn(state eventauth.StateMap) bool {
	for userID, m := range state.Members() {
		if serverOf(userID) == a.serverName && m.Membership() == "join" {
			return true
		}
	}
	return false
}

// receiveMembership checks a signed member event another server sends
// through send_join, send_leave or send_knock before we accept it: its
// room, ID, type, membership, that the sender is the state key and
// belongs to the origin, and the origin's signature. It then hands it to
// the room server to relay to the room's other servers, and returns the
// accepted event and the state before it.
func (a *API) receiveMembership(ctx context.Context, r *http.Request, origin, m string) (*event.PDU, eventauth.StateMap, error) {
	roomID, eventID := r.PathValue("roomId"), r.PathValue("eventId")
	state, err := a.roomState(roomID)
	if err != nil {
		return nil, nil, err
	}
	if err := checkACL(state, origin); err != nil {
		return nil, nil, err
	}
	rules, err := a.rs.RoomVersion(roomID)
	if err != nil {
		return nil, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	ev, err := membership.CheckSignRequest(ctx, membership.SignRequest{Rules: rules, Origin: origin, OurServer: a.serverName,
		RoomID: roomID, EventID: eventID, Membership: m, Event: body, Keys: a.rs})
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = a.rs.SubmitInput(sctx, roomserver.Input{RoomVersion: rules.ID, Event: ev.JSON(), Origin: origin, Send: true})
	var rej *roomserver.RejectedError
	if errors.As(err, &rej) {
		return nil, nil, forbidden("%s rejected: %v", m, rej.Err)
	}
	if err != nil {
		return nil, nil, err
	}
	before, err := a.rs.StateBeforeEvent(ctx, ev.EventID())
	if err != nil {
		return nil, nil, err
	}
	return ev, before, nil
}

func pdusOf(evs []*event.PDU) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(evs))
	for _, e := range evs {
		out = append(out, e.JSON())
	}
	return out
}

func (a *API) sendJoin(version int) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, origin string) error {
		ev, before, err := a.receiveMembership(r.Context(), r, origin, membership.Join)
		if err != nil {
			return err
		}
		stateEvs, _, chain, err := a.stateWithChain(before, ev.EventID())
		if err != nil {
			return err
		}
		resp := map[string]any{"state": rawEvents(pdusOf(stateEvs)), "auth_chain": rawEvents(pdusOf(chain)),
			"origin": a.serverName, "event": json.RawMessage(ev.JSON()), "members_omitted": false}
		if version == 1 {
			writeRaw(w, []any{200, resp})
		} else {
			writeRaw(w, resp)
		}
		return nil
	}
}

func (a *API) sendLeave(version int) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, origin string) error {
		if _, _, err := a.receiveMembership(r.Context(), r, origin, membership.Leave); err != nil {
			return err
		}
		if version == 1 {
			writeRaw(w, []any{200, map[string]any{}})
		} else {
			writeRaw(w, map[string]any{})
		}
		return nil
	}
}

func (a *API) sendKnock(w http.ResponseWriter, r *http.Request, origin string) error {
	rules, err := a.rs.RoomVersion(r.PathValue("roomId"))
	if err == nil && !rules.Knocking {
		return forbidden("room version %s does not allow knocking", rules.ID)
	}
	_, before, err := a.receiveMembership(r.Context(), r, origin, membership.Knock)
	if err != nil {
		return err
	}
	var out []json.RawMessage
	for k, p := range before {
		switch k.Type {
		case "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption":
			out = append(out, p.JSON())
		}
	}
	writeRaw(w, map[string]any{"knock_room_state": rawEvents(out)})
	return nil
}

// invite handles invites v1 and v2 for one of our users: the event is
// checked (room, ID, type, membership, sender of the requesting server,
// invitee ours, signature), signed by us and stored so the invitee sees
// it; the signed event is returned.
func (a *API) invite(version int) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, origin string) error {
		roomID, eventID := r.PathValue("roomId"), r.PathValue("eventId")
		body, err := readBody(r)
		if err != nil {
			return err
		}
		var raw []byte
		var roomVersion string
		var strippedState []json.RawMessage
		if version == 1 {
			raw = body
			roomVersion = "1"
			for _, s := range gjson.GetBytes(body, "unsigned.invite_room_state").Array() {
				strippedState = append(strippedState, json.RawMessage(s.Raw))
			}
		} else {
			raw = []byte(gjson.GetBytes(body, "event").Raw)
			roomVersion = gjson.GetBytes(body, "room_version").Str
			for _, s := range gjson.GetBytes(body, "invite_room_state").Array() {
				strippedState = append(strippedState, json.RawMessage(s.Raw))
			}
		}
		ev, rules, err := membership.CheckInvite(r.Context(), membership.InviteRequest{RoomVersion: roomVersion, Origin: origin,
			OurServer: a.serverName, RoomID: roomID, EventID: eventID, Event: raw, Keys: a.rs})
		if err != nil {
			return err
		}
		if err := membership.CheckInviteRoomState(rules, roomID, strippedState); err != nil {
			// The spec lets servers only warn for room versions 1-11,
			// whose senders (Dendrite among them) send stripped state.
			a.log.Warn("federationapi: invite_room_state does not check out", "origin", origin, "room_id", roomID, "err", err)
		}
		invitee, _ := ev.StateKey()
		if _, ok, err := a.profiles.Profile(r.Context(), invitee); err != nil {
			return err
		} else if !ok {
			return notFound("unknown user %s", invitee)
		}
		if state, err := a.rs.CurrentState(roomID); err == nil && len(state) > 0 && !ACLAllows(state, origin) {
			return forbidden("server %s is denied by the room's server ACL", origin)
		}
		signed, err := membership.Countersign(ev, a.serverName, a.key)
		if err != nil {
			return err
		}
		if err := a.rs.StoreInvite(r.Context(), rules, signed, strippedState); err != nil {
			return err
		}
		resp := map[string]any{"event": json.RawMessage(signed.JSON())}
		if version == 1 {
			writeRaw(w, []any{200, resp})
		} else {
			writeRaw(w, resp)
		}
		return nil
	}
}

package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/membership"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// Profile returns a local user's display name and whether the user
// exists (the federation API's profile query uses it).
func (a *API) Profile(ctx context.Context, userID string) (string, bool, error) {
	return a.displayName(ctx, userID)
}

func serverOf(userID string) string {
	if u, err := id.ParseUserID(userID); err == nil {
		return u.Server().String()
	}
	return ""
}

// resident reports whether one of our users is joined to the room (so
// that events can be built here on its current state).
func (a *API) resident(roomID string) bool {
	servers, err := a.rs.JoinedServers(roomID)
	return err == nil && slices.Contains(servers, a.serverName)
}

// supportedVersions lists the room versions we can join.
func supportedVersions() []string {
	var out []string
	for _, r := range roomversion.All() {
		out = append(out, r.ID)
	}
	return out
}

// remoteJoin joins userID to a room we are not in through one of servers:
// make_join, our event built from the checked template, send_join, the
// answer checked (every state and auth chain event: format, signatures,
// hashes, auth; our join against the state), then the room server stores
// the room with that state. The first server that succeeds wins.
func (a *API) remoteJoin(ctx context.Context, roomID, userID string, servers []string) error {
	if a.fed == nil {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room and no federation")
	}
	var lastErr error
	tried := map[string]bool{a.serverName: true}
	for _, srv := range servers {
		if srv == "" || tried[srv] {
			continue
		}
		tried[srv] = true
		err := a.joinVia(ctx, roomID, userID, srv)
		if err == nil {
			return nil
		}
		a.log.Info("clientapi: remote join failed", "room_id", roomID, "via", srv, "err", err)
		lastErr = err
	}
	if lastErr == nil {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room and no server to join it through")
	}
	var fe *federation.Error
	if errors.As(lastErr, &fe) && fe.Status >= 400 && fe.Status < 500 {
		return httputil.Errorf(fe.Status, fe.Errcode, "joining through another server: "+fe.Message)
	}
	var me *httputil.Error
	if errors.As(lastErr, &me) {
		return me
	}
	return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "joining through another server failed: "+lastErr.Error())
}

func (a *API) joinVia(ctx context.Context, roomID, userID, srv string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	raw, err := a.fed.MakeJoin(ctx, srv, roomID, userID, supportedVersions())
	if err != nil {
		return fmt.Errorf("make_join: %w", err)
	}
	rules, tmpl, err := membership.ParseMakeResponse(raw, nil)
	if err != nil {
		return fmt.Errorf("make_join answer: %w", err)
	}
	ev, err := membership.BuildEvent(membership.BuildRequest{Rules: rules, Template: tmpl, RoomID: roomID, UserID: userID,
		Membership: membership.Join, ServerName: a.serverName, Key: a.key})
	if err != nil {
		return fmt.Errorf("make_join template: %w", err)
	}
	resp, err := a.fed.SendJoin(ctx, srv, roomID, ev.EventID(), ev.JSON())
	if err != nil {
		return fmt.Errorf("send_join: %w", err)
	}
	joined, err := membership.CheckSendJoinResponse(ctx, membership.SendJoinCheck{Rules: rules, Join: ev, Response: resp, Keys: a.rs})
	if err != nil {
		return fmt.Errorf("send_join answer: %w", err)
	}
	for _, d := range joined.Dropped {
		a.log.Warn("clientapi: send_join answer: event dropped", "via", srv, "event_id", d.EventID, "err", d.Err)
	}
	in := roomserver.Input{RoomVersion: rules.ID, Event: joined.Join.JSON(), Origin: srv, StateBefore: []string{}}
	for _, p := range joined.AuthChain {
		in.Outliers = append(in.Outliers, p.JSON())
	}
	for _, p := range joined.StateEvents {
		in.Outliers = append(in.Outliers, p.JSON())
		in.StateBefore = append(in.StateBefore, p.EventID())
	}
	if err := a.rs.SubmitInput(ctx, in); err != nil {
		return fmt.Errorf("storing the joined room: %w", err)
	}
	return nil
}

// joinServers lists the servers to try for a room we are not in: those
// the client named, the room ID's server, and the server of whoever
// invited the user.
func (a *API) joinServers(roomID, userID string, named []string) []string {
	out := append([]string{}, named...)
	if r, err := id.ParseRoomID(roomID); err == nil {
		if srv, ok := r.Server(); ok {
			out = append(out, srv.String())
		}
	}
	if inv := a.rs.PendingInvite(roomID, userID); inv != nil {
		out = append(out, serverOf(inv.Sender()))
	}
	return out
}

// remoteLeave rejects an invite to a room we are not in, through the
// inviter's server: make_leave, our leave built from the template,
// send_leave.
func (a *API) remoteLeave(ctx context.Context, roomID, userID string) error {
	inv := a.rs.PendingInvite(roomID, userID)
	if inv == nil || a.fed == nil {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room")
	}
	srv := serverOf(inv.Sender())
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	raw, err := a.fed.MakeLeave(ctx, srv, roomID, userID)
	if err != nil {
		return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "make_leave: "+err.Error())
	}
	rules, tmpl, err := membership.ParseMakeResponse(raw, nil)
	if err != nil {
		return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "make_leave answer: "+err.Error())
	}
	ev, err := membership.BuildEvent(membership.BuildRequest{Rules: rules, Template: tmpl, RoomID: roomID, UserID: userID,
		Membership: membership.Leave, ServerName: a.serverName, Key: a.key})
	if err != nil {
		return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "make_leave template: "+err.Error())
	}
	if err := a.fed.SendLeave(ctx, srv, roomID, ev.EventID(), ev.JSON()); err != nil {
		return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "send_leave: "+err.Error())
	}
	return a.rs.StoreInvite(ctx, rules, ev, nil)
}

// sendInvite invites a user of another server: the invite is built and
// checked here, signed by the invitee's server (invite v2), then stored.
func (a *API) sendInvite(ctx context.Context, roomID, sender, invitee string, content []byte) error {
	lock := a.roomLock(roomID)
	lock.Lock()
	defer lock.Unlock()
	b, state, rules, err := a.rs.NewBuilder(roomID, "m.room.member", sender, &invitee, content)
	if errors.Is(err, roomserver.ErrUnknownRoom) {
		return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room")
	}
	if err != nil {
		return err
	}
	ev, err := b.Build(rules, a.serverName, a.key.KeyID(), a.key.PrivateKey())
	if err != nil {
		return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	if err := eventauth.Check(ev, state); err != nil {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", err.Error())
	}
	if a.fed == nil {
		return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", "cannot invite users of other servers")
	}
	var strippedState []json.RawMessage
	for k, p := range state {
		switch k.Type {
		case "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption":
			strippedState = append(strippedState, p.JSON())
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := a.fed.Invite(fctx, serverOf(invitee), roomID, ev.EventID(), rules.ID, ev.JSON(), strippedState)
	if err != nil {
		var fe *federation.Error
		if errors.As(err, &fe) && fe.Status >= 400 && fe.Status < 500 {
			return httputil.Errorf(fe.Status, fe.Errcode, "the invitee's server refused the invite: "+fe.Message)
		}
		return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "inviting through the invitee's server: "+err.Error())
	}
	signed, err := event.Parse(rules, []byte(gjson.GetBytes(resp, "event").Raw))
	if err != nil || signed.EventID() != ev.EventID() {
		return httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the invitee's server returned another event")
	}
	_, err = a.submit(ctx, rules, signed, nil, nil)
	return err
}

// remoteProfile asks the user's server for the profile.
func (a *API) remoteProfile(ctx context.Context, userID string) (map[string]any, error) {
	if a.fed == nil {
		return nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown user")
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := a.fed.QueryProfile(ctx, serverOf(userID), userID, "")
	if err != nil {
		var fe *federation.Error
		if errors.As(err, &fe) && fe.Status == http.StatusNotFound {
			return nil, httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown user")
		}
		return nil, httputil.Errorf(http.StatusBadGateway, "M_UNKNOWN", "profile query: "+err.Error())
	}
	out := map[string]any{}
	for _, f := range []string{"displayname", "avatar_url"} {
		if v := gjson.GetBytes(raw, f); v.Type == gjson.String {
			out[f] = v.Str
		}
	}
	return out, nil
}

package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Client is the part of *federation.Client the Perform functions call.
type Client interface {
	MakeJoin(ctx context.Context, destination, roomID, userID string, supported []string) (json.RawMessage, error)
	SendJoin(ctx context.Context, destination, roomID, eventID string, ev json.RawMessage) (json.RawMessage, error)
	MakeLeave(ctx context.Context, destination, roomID, userID string) (json.RawMessage, error)
	SendLeave(ctx context.Context, destination, roomID, eventID string, ev json.RawMessage) error
}

// JoinRequest describes a join through residents.
type JoinRequest struct {
	Client Client
	// Servers are the residents to try, in order.
	Servers []string
	RoomID  string
	// UserID is our user; ServerName and Key sign the join.
	UserID     string
	ServerName string
	Key        *signing.Key
	// Keys verifies the answer's events.
	Keys signing.KeyLookup
	// Supported lists the IDs of the room versions we accept (sent as
	// ver). Nil: roomversion.Stable().
	Supported []string
	// MaxEvents bounds the send_join answer (see SendJoinCheck).
	MaxEvents int
	Now       func() time.Time
}

// Joined is the result of [PerformJoin].
type Joined struct {
	*JoinedRoom
	Rules roomversion.Rules
	// Server is the resident that let us in.
	Server string
}

// PerformJoin joins a remote room: for each server in turn, make_join
// (with our room versions), [BuildEvent], send_join v2, and
// [CheckSendJoinResponse]. A server that refuses, fails or answers
// something that does not check out moves on to the next; the error of
// the last one is returned (a *federation.Error from the server, or an
// *Error). An M_INCOMPATIBLE_ROOM_VERSION or M_FORBIDDEN answer ends the
// attempt at once: other residents would say the same.
func PerformJoin(ctx context.Context, req JoinRequest) (*Joined, error) {
	supported := req.Supported
	if supported == nil {
		supported = roomversion.Stable()
	}
	ids := supported
	isSupported := func(r roomversion.Rules) bool { return slices.Contains(supported, r.ID) }
	var last error = errors.New("membership: no servers to join through")
	for _, server := range req.Servers {
		raw, err := req.Client.MakeJoin(ctx, server, req.RoomID, req.UserID, ids)
		if err != nil {
			last = fmt.Errorf("membership: make_join on %s: %w", server, err)
			if final(err) {
				return nil, last
			}
			continue
		}
		rules, tmpl, err := ParseMakeResponse(raw, isSupported)
		if err != nil {
			last = err
			continue
		}
		ev, err := BuildEvent(BuildRequest{Rules: rules, Template: tmpl, RoomID: req.RoomID, UserID: req.UserID,
			Membership: Join, ServerName: req.ServerName, Key: req.Key, Now: req.Now})
		if err != nil {
			last = err
			continue
		}
		answer, err := req.Client.SendJoin(ctx, server, req.RoomID, ev.EventID(), ev.JSON())
		if err != nil {
			last = fmt.Errorf("membership: send_join on %s: %w", server, err)
			if final(err) {
				return nil, last
			}
			continue
		}
		jr, err := CheckSendJoinResponse(ctx, SendJoinCheck{Rules: rules, Join: ev, Response: answer, Keys: req.Keys, MaxEvents: req.MaxEvents})
		if err != nil {
			last = err
			continue
		}
		return &Joined{JoinedRoom: jr, Rules: rules, Server: server}, nil
	}
	return nil, last
}

// final reports whether a remote error ends a join attempt.
func final(err error) bool {
	var fe *federation.Error
	return errors.As(err, &fe) && (fe.Errcode == "M_INCOMPATIBLE_ROOM_VERSION" || fe.Errcode == "M_FORBIDDEN")
}

// LeaveRequest describes a leave through a resident (rejecting an
// invite, rescinding a knock).
type LeaveRequest struct {
	Client     Client
	Servers    []string
	RoomID     string
	UserID     string
	ServerName string
	Key        *signing.Key
	Now        func() time.Time
}

// PerformLeave leaves a room we are not joined to through a resident:
// make_leave, [BuildEvent], send_leave v2, trying servers in order. It
// returns the leave event sent.
func PerformLeave(ctx context.Context, req LeaveRequest) (*event.PDU, error) {
	var last error = errors.New("membership: no servers to leave through")
	for _, server := range req.Servers {
		raw, err := req.Client.MakeLeave(ctx, server, req.RoomID, req.UserID)
		if err != nil {
			last = fmt.Errorf("membership: make_leave on %s: %w", server, err)
			continue
		}
		rules, tmpl, err := ParseMakeResponse(raw, nil)
		if err != nil {
			last = err
			continue
		}
		ev, err := BuildEvent(BuildRequest{Rules: rules, Template: tmpl, RoomID: req.RoomID, UserID: req.UserID,
			Membership: Leave, ServerName: req.ServerName, Key: req.Key, Now: req.Now})
		if err != nil {
			last = err
			continue
		}
		if err := req.Client.SendLeave(ctx, server, req.RoomID, ev.EventID(), ev.JSON()); err != nil {
			last = fmt.Errorf("membership: send_leave on %s: %w", server, err)
			continue
		}
		return ev, nil
	}
	return nil, last
}

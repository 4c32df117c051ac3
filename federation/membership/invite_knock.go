package membership

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// CheckInviteResponse checks the event an invitee's server returned from
// invite v2: the event we sent, unchanged apart from signatures and
// unsigned, still validly signed by us (the sender's server), and signed
// by the invitee's server. It returns the returned event, which is the
// one to send to the room. Errors wrap [ErrBadResponse] (and
// [ErrSignature] for signatures).
func CheckInviteResponse(ctx context.Context, rules roomversion.Rules, sent *event.PDU, returned []byte, keys signing.KeyLookup) (*event.PDU, error) {
	ev, err := event.Parse(rules, returned)
	if err != nil {
		return nil, badResponse(err, "the returned invite")
	}
	a, errA := withoutSignatures(sent.JSON())
	b, errB := withoutSignatures(ev.JSON())
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		return nil, badResponse(nil, "the returned invite differs from the one sent")
	}
	if err := signing.VerifyEvent(ctx, rules, ev.JSON(), keys); err != nil {
		return nil, newErr(502, "M_UNKNOWN", ErrSignature, err, "the returned invite")
	}
	sk, _ := ev.StateKey()
	invitee, err := id.ParseUserID(sk)
	if err != nil {
		return nil, badResponse(err, "invitee")
	}
	if err := verifyServer(ctx, rules, ev, invitee.Server().String(), keys); err != nil {
		return nil, newErr(502, "M_UNKNOWN", ErrSignature, err, "the invitee's server did not sign")
	}
	return ev, nil
}

// withoutSignatures returns the canonical event without signatures and
// unsigned.
func withoutSignatures(raw []byte) ([]byte, error) {
	out, err := sjson.DeleteBytes(raw, "signatures")
	if err == nil {
		out, err = sjson.DeleteBytes(out, "unsigned")
	}
	if err != nil {
		return nil, err
	}
	return canonicaljson.Canonicalize(out)
}

// verifyServer checks that server signed ev with at least one of its
// ed25519 keys.
func verifyServer(ctx context.Context, rules roomversion.Rules, ev *event.PDU, server string, keys signing.KeyLookup) error {
	form, err := hashing.SigningForm(rules, ev.JSON())
	if err != nil {
		return err
	}
	var validAt time.Time
	if rules.EnforceKeyValidity {
		validAt = time.UnixMilli(ev.OriginServerTS())
	}
	sigs := gjson.GetBytes(ev.JSON(), "signatures").Get(gjson.Escape(server))
	ok := false
	sigs.ForEach(func(k, v gjson.Result) bool {
		if !strings.HasPrefix(k.Str, "ed25519:") || v.Type != gjson.String {
			return true
		}
		pub, err := keys.VerifyKey(ctx, server, k.Str, validAt)
		if err != nil {
			return true
		}
		sig, err := signing.DecodeBase64(v.Str)
		if err == nil && ed25519.Verify(pub, form, sig) {
			ok = true
			return false
		}
		return true
	})
	if !ok {
		return fmt.Errorf("%w: no valid signature by %s", signing.ErrMissingSignature, server)
	}
	return nil
}

// KnockClient is the part of *federation.Client [PerformKnock] calls.
type KnockClient interface {
	MakeKnock(ctx context.Context, destination, roomID, userID string, supported []string) (json.RawMessage, error)
	SendKnock(ctx context.Context, destination, roomID, eventID string, ev json.RawMessage) (json.RawMessage, error)
}

// KnockRequest describes a knock through residents.
type KnockRequest struct {
	Client     KnockClient
	Servers    []string
	RoomID     string
	UserID     string
	ServerName string
	Key        *signing.Key
	// Supported lists the IDs of the room versions we accept. Nil:
	// roomversion.Stable().
	Supported []string
	Now       func() time.Time
}

// Knocked is the result of [PerformKnock].
type Knocked struct {
	Event *event.PDU
	Rules roomversion.Rules
	// RoomState is the answer's knock_room_state, checked as
	// [CheckInviteRoomState] checks invite_room_state.
	RoomState []json.RawMessage
	Server    string
}

// PerformKnock knocks on a remote room: make_knock, [BuildEvent],
// send_knock, trying servers in order; the answer's knock_room_state
// must hold the room's create event. A version without knocking, an
// incompatible version or M_FORBIDDEN end the attempt.
func PerformKnock(ctx context.Context, req KnockRequest) (*Knocked, error) {
	supported := req.Supported
	if supported == nil {
		supported = roomversion.Stable()
	}
	var last error = fmt.Errorf("membership: no servers to knock through")
	for _, server := range req.Servers {
		raw, err := req.Client.MakeKnock(ctx, server, req.RoomID, req.UserID, supported)
		if err != nil {
			last = fmt.Errorf("membership: make_knock on %s: %w", server, err)
			if final(err) {
				return nil, last
			}
			continue
		}
		rules, tmpl, err := ParseMakeResponse(raw, func(r roomversion.Rules) bool { return contains(supported, r.ID) })
		if err != nil {
			last = err
			continue
		}
		if !rules.Knocking {
			return nil, newErr(400, "M_INCOMPATIBLE_ROOM_VERSION", ErrNotAllowed, nil, "room version %s has no knocking", rules.ID)
		}
		ev, err := BuildEvent(BuildRequest{Rules: rules, Template: tmpl, RoomID: req.RoomID, UserID: req.UserID,
			Membership: Knock, ServerName: req.ServerName, Key: req.Key, Now: req.Now})
		if err != nil {
			last = err
			continue
		}
		answer, err := req.Client.SendKnock(ctx, server, req.RoomID, ev.EventID(), ev.JSON())
		if err != nil {
			last = fmt.Errorf("membership: send_knock on %s: %w", server, err)
			if final(err) {
				return nil, last
			}
			continue
		}
		var body struct {
			State []json.RawMessage `json:"knock_room_state"`
		}
		if err := json.Unmarshal(answer, &body); err != nil {
			last = badResponse(err, "send_knock answer")
			continue
		}
		if err := CheckInviteRoomState(rules, req.RoomID, body.State); err != nil {
			last = badResponse(err, "knock_room_state")
			continue
		}
		return &Knocked{Event: ev, Rules: rules, RoomState: body.State, Server: server}, nil
	}
	return nil, last
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

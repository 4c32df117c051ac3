package membership

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Sentinels matched by [*Error] with errors.Is.
var (
	// ErrIncompatibleRoomVersion: the room's version is not in the
	// requester's list (M_INCOMPATIBLE_ROOM_VERSION).
	ErrIncompatibleRoomVersion = errors.New("membership: incompatible room version")
	// ErrUnsupportedRoomVersion: a room version we do not know.
	ErrUnsupportedRoomVersion = errors.New("membership: unsupported room version")
	// ErrSenderNotOrigin: the user or sender is not on the requesting
	// server.
	ErrSenderNotOrigin = errors.New("membership: user is not on the origin server")
	// ErrNotAllowed: the authorization rules refuse the membership.
	ErrNotAllowed = errors.New("membership: not allowed by the room's rules")
	// ErrBadEvent: an event or template that is malformed or not the one
	// expected (type, room, sender, state_key, membership, event ID).
	ErrBadEvent = errors.New("membership: bad event")
	// ErrSignature: signatures or content hash do not check out.
	ErrSignature = errors.New("membership: bad signatures or hashes")
	// ErrBadResponse: a make_* or send_join answer that does not check
	// out.
	ErrBadResponse = errors.New("membership: bad response")
	// ErrInviteRoomState: invite_room_state lacks the create event, is
	// malformed or holds events of another room (M_MISSING_PARAM).
	ErrInviteRoomState = errors.New("membership: bad invite_room_state")
)

// Error is a refusal with the HTTP status and Matrix errcode the
// federation API answers with.
type Error struct {
	Status  int
	Errcode string
	Message string
	// RoomVersion is the room's version, sent with
	// M_INCOMPATIBLE_ROOM_VERSION.
	RoomVersion string

	sentinel error
	cause    error
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the sentinel and the underlying error.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.sentinel, e.cause}
	}
	return []error{e.sentinel}
}

// MarshalJSON gives the Matrix error body.
func (e *Error) MarshalJSON() ([]byte, error) {
	body := map[string]string{"errcode": e.Errcode, "error": e.Message}
	if e.RoomVersion != "" {
		body["room_version"] = e.RoomVersion
	}
	return json.Marshal(body)
}

func newErr(status int, errcode string, sentinel, cause error, format string, args ...any) *Error {
	msg := sentinel.Error() + ": " + fmt.Sprintf(format, args...)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &Error{Status: status, Errcode: errcode, Message: msg, sentinel: sentinel, cause: cause}
}

func badEvent(cause error, format string, args ...any) *Error {
	return newErr(400, "M_BAD_JSON", ErrBadEvent, cause, format, args...)
}

func badResponse(cause error, format string, args ...any) *Error {
	return newErr(502, "M_UNKNOWN", ErrBadResponse, cause, format, args...)
}

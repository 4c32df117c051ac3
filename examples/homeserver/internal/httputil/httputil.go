// Package httputil holds the Matrix error JSON and request helpers shared
// by the HTTP APIs.
package httputil

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// MaxBodyBytes bounds request bodies (the spec's event size limit plus
// room for the request envelope).
const MaxBodyBytes = 96 << 10

// Error is a Matrix error response.
type Error struct {
	Status  int    `json:"-"`
	Errcode string `json:"errcode"`
	Message string `json:"error"`
	// RetryAfter, when set, is sent as a Retry-After header in whole
	// seconds, and for 429 also as retry_after_ms.
	RetryAfter   time.Duration `json:"-"`
	RetryAfterMS int64         `json:"retry_after_ms,omitempty"`
}

func (e *Error) Error() string { return e.Errcode + ": " + e.Message }

// Errorf builds an *Error.
func Errorf(status int, errcode, msg string) *Error {
	return &Error{Status: status, Errcode: errcode, Message: msg}
}

// Common errors.
var (
	ErrNotFound     = Errorf(http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized request")
	ErrMissingToken = Errorf(http.StatusUnauthorized, "M_MISSING_TOKEN", "missing access token")
	ErrUnknownToken = Errorf(http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "unknown access token")
)

// WriteJSON writes v with the status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes err as Matrix error JSON; errors that are not *Error
// become M_UNKNOWN with status 500.
func WriteError(w http.ResponseWriter, err error) {
	var me *Error
	if !errors.As(err, &me) {
		me = Errorf(http.StatusInternalServerError, "M_UNKNOWN", err.Error())
	}
	if me.RetryAfter > 0 {
		secs := int64((me.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		if me.Status == http.StatusTooManyRequests {
			c := *me
			c.RetryAfterMS = max(me.RetryAfter.Milliseconds(), 1)
			me = &c
		}
	}
	WriteJSON(w, me.Status, me)
}

// ReadJSON decodes a bounded JSON body into v. An empty body decodes as {}.
func ReadJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
		}
		return Errorf(http.StatusBadRequest, "M_BAD_JSON", "could not read body")
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return Errorf(http.StatusBadRequest, "M_NOT_JSON", "request body is not JSON")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	return nil
}

// ReadRawObject reads a bounded body that must be a JSON object.
func ReadRawObject(r *http.Request) ([]byte, error) {
	var m map[string]json.RawMessage
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
	}
	if !json.Valid(body) {
		return nil, Errorf(http.StatusBadRequest, "M_NOT_JSON", "request body is not JSON")
	}
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, Errorf(http.StatusBadRequest, "M_BAD_JSON", "request body must be a JSON object")
	}
	return body, nil
}

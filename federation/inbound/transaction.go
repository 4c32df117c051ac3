package inbound

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tidwall/gjson"
)

// Limits of one transaction (server-server API, "Transactions").
const (
	MaxPDUs = 50
	MaxEDUs = 100
)

// Sentinels of [ParseTransaction].
var (
	ErrBadTransaction = errors.New("inbound: malformed transaction")
	ErrTooManyPDUs    = errors.New("inbound: more than 50 PDUs in a transaction")
	ErrTooManyEDUs    = errors.New("inbound: more than 100 EDUs in a transaction")
)

// Transaction is a parsed PUT /_matrix/federation/v1/send/{txnId} body.
type Transaction struct {
	Origin         string
	OriginServerTS int64
	// PDUs are the raw events, unchecked (see [Checker]).
	PDUs []json.RawMessage
	// EDUs are the well-formed EDUs; BadEDUs counts the ones skipped
	// because they are not an object with a string edu_type and an
	// object content.
	EDUs    []EDU
	BadEDUs int
}

// EDU is an ephemeral data unit.
type EDU struct {
	Type    string
	Content json.RawMessage
}

// ParseTransaction reads a transaction body. It checks the envelope
// (origin a string, origin_server_ts an integer, pdus a list, edus absent
// or a list, no duplicate top-level keys among these) and the sizes, and
// counts elements before reading them. The caller bounds the body's size
// (federation.Authenticator does) and must authorise by the request's
// X-Matrix origin, not the body's.
//
// Errors wrap [ErrBadTransaction], [ErrTooManyPDUs] or [ErrTooManyEDUs];
// the federation API answers them with 400 M_BAD_JSON (too many: the
// whole transaction is refused, as Synapse and Dendrite do).
func ParseTransaction(body []byte) (*Transaction, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("%w: not JSON", ErrBadTransaction)
	}
	top := gjson.ParseBytes(body)
	if !top.IsObject() {
		return nil, fmt.Errorf("%w: not an object", ErrBadTransaction)
	}
	var origin, ts, pdus, edus gjson.Result
	var dup string
	top.ForEach(func(k, v gjson.Result) bool {
		var dst *gjson.Result
		switch k.Str {
		case "origin":
			dst = &origin
		case "origin_server_ts":
			dst = &ts
		case "pdus":
			dst = &pdus
		case "edus":
			dst = &edus
		default:
			return true
		}
		if dst.Exists() {
			dup = k.Str
			return false
		}
		*dst = v
		return true
	})
	if dup != "" {
		return nil, fmt.Errorf("%w: duplicate key %q", ErrBadTransaction, dup)
	}
	if origin.Type != gjson.String {
		return nil, fmt.Errorf("%w: origin is not a string", ErrBadTransaction)
	}
	if ts.Type != gjson.Number || !isInteger(ts.Raw) {
		return nil, fmt.Errorf("%w: origin_server_ts is not an integer", ErrBadTransaction)
	}
	if !pdus.IsArray() {
		return nil, fmt.Errorf("%w: pdus is not a list", ErrBadTransaction)
	}
	if edus.Exists() && !edus.IsArray() {
		return nil, fmt.Errorf("%w: edus is not a list", ErrBadTransaction)
	}
	if n := count(pdus, MaxPDUs); n > MaxPDUs {
		return nil, fmt.Errorf("%w: more than %d", ErrTooManyPDUs, MaxPDUs)
	}
	if n := count(edus, MaxEDUs); n > MaxEDUs {
		return nil, fmt.Errorf("%w: more than %d", ErrTooManyEDUs, MaxEDUs)
	}
	t := &Transaction{Origin: origin.Str, OriginServerTS: ts.Int(), PDUs: []json.RawMessage{}}
	pdus.ForEach(func(_, v gjson.Result) bool {
		t.PDUs = append(t.PDUs, json.RawMessage(v.Raw))
		return true
	})
	edus.ForEach(func(_, v gjson.Result) bool {
		typ, content := v.Get("edu_type"), v.Get("content")
		if !v.IsObject() || typ.Type != gjson.String || !content.IsObject() {
			t.BadEDUs++
			return true
		}
		t.EDUs = append(t.EDUs, EDU{Type: typ.Str, Content: json.RawMessage(content.Raw)})
		return true
	})
	return t, nil
}

// count returns the number of elements of a list, stopping after max+1.
func count(list gjson.Result, max int) int {
	n := 0
	list.ForEach(func(_, _ gjson.Result) bool {
		n++
		return n <= max
	})
	return n
}

func isInteger(raw string) bool {
	if raw == "" || len(raw) > 20 {
		return false
	}
	for i, c := range raw {
		if c == '-' && i == 0 {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// RoomIDOf returns the room_id of a raw PDU, so that the caller can find
// the room's version before parsing it. Errors wrap [ErrBadTransaction].
func RoomIDOf(raw []byte) (string, error) {
	if !gjson.ValidBytes(raw) {
		return "", fmt.Errorf("%w: PDU is not JSON", ErrBadTransaction)
	}
	v := gjson.GetBytes(raw, "room_id")
	if v.Type != gjson.String || v.Str == "" || len(v.Str) > 255 {
		return "", fmt.Errorf("%w: PDU has no room_id string", ErrBadTransaction)
	}
	return v.Str, nil
}

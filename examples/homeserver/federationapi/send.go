package federationapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
)

// pduResult is one entry of the /send response's "pdus".
type pduResult struct {
	Error string `json:"error,omitempty"`
}

func (a *API) originLock(origin string) *sync.Mutex {
	a.txnMu.Lock()
	defer a.txnMu.Unlock()
	m := a.txnLocks[origin]
	if m == nil {
		m = &sync.Mutex{}
		a.txnLocks[origin] = m
	}
	return m
}

// send handles PUT /v1/send/{txnId}: each PDU is checked and given to the
// room server; the response lists a result per PDU. A transaction already
// answered for (origin, txnId) gets the same answer again without being
// processed.
func (a *API) send(w http.ResponseWriter, r *http.Request, origin string) error {
	txnID := r.PathValue("txnId")
	body, err := readBody(r)
	if err != nil {
		return err
	}
	pdus := gjson.GetBytes(body, "pdus")
	edus := gjson.GetBytes(body, "edus")
	if !pdus.IsArray() {
		return badJSON("pdus must be an array")
	}
	if edus.Exists() && !edus.IsArray() {
		return badJSON("edus must be an array")
	}
	if n, m := len(pdus.Array()), len(edus.Array()); n > MaxPDUs || m > MaxEDUs {
		a.log.Warn("federationapi: refused an oversized transaction", "origin", origin, "txn_id", txnID, "pdus", n, "edus", m)
		return badJSON("at most %d PDUs and %d EDUs per transaction (got %d and %d)", MaxPDUs, MaxEDUs, n, m)
	}
	lock := a.originLock(origin)
	lock.Lock()
	defer lock.Unlock()
	var stored string
	err = a.db.QueryRowContext(r.Context(), `SELECT response FROM fed_txns WHERE origin = ? AND txn_id = ?`, origin, txnID).Scan(&stored)
	if err == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(stored))
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	results := map[string]pduResult{}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	for _, p := range pdus.Array() {
		eventID, res, err := a.receivePDU(ctx, origin, []byte(p.Raw))
		if err != nil {
			return err // a failure worth a retry of the whole transaction
		}
		if res.Error != "" {
			a.RejectedPDUs.Add(1)
			a.log.Info("federationapi: PDU not accepted", "origin", origin, "txn_id", txnID, "event_id", eventID, "reason", res.Error)
		}
		if eventID != "" {
			results[eventID] = res
		}
	}
	for _, e := range edus.Array() {
		a.edu(r.Context(), origin, e)
	}
	resp, _ := json.Marshal(map[string]any{"pdus": results})
	if _, err := a.db.ExecContext(r.Context(), `INSERT INTO fed_txns (origin, txn_id, response) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, origin, txnID, string(resp)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
	return nil
}

// receivePDU runs the receipt checks on one PDU (spec: server-server API,
// "Checks performed on receipt of a PDU"): a room we have, the format of
// its room version, the ACL, signatures (a content hash mismatch keeps the
// redacted event), then the room server's auth checks. It returns the
// event ID ("" when none can be given) and the result; an error only for
// failures worth retrying.
func (a *API) receivePDU(ctx context.Context, origin string, raw []byte) (string, pduResult, error) {
	roomID := gjson.GetBytes(raw, "room_id").Str
	rules, err := a.rs.RoomVersion(roomID)
	if err != nil {
		if errors.Is(err, roomserver.ErrUnknownRoom) {
			a.log.Info("federationapi: PDU for a room we do not have dropped", "origin", origin, "room_id", roomID)
			return "", pduResult{}, nil
		}
		return "", pduResult{}, err
	}
	ev, err := event.Parse(rules, raw)
	if err != nil {
		id := gjson.GetBytes(raw, "event_id").Str
		a.RejectedPDUs.Add(1)
		a.log.Info("federationapi: malformed PDU dropped", "origin", origin, "event_id", id, "err", err)
		if id != "" {
			return id, pduResult{Error: "malformed event: " + err.Error()}, nil
		}
		return "", pduResult{}, nil
	}
	state, err := a.rs.CurrentState(roomID)
	if err != nil {
		return "", pduResult{}, err
	}
	if !ACLAllows(state, origin) {
		return ev.EventID(), pduResult{Error: "Forbidden by server ACLs"}, nil
	}
	ev, err = verifyPDU(ctx, rules, ev, a.rs)
	if err != nil {
		return ev.EventID(), pduResult{Error: err.Error()}, nil
	}
	err = a.rs.SubmitInput(ctx, roomserver.Input{RoomVersion: rules.ID, Event: ev.JSON(), Origin: origin})
	var rej *roomserver.RejectedError
	switch {
	case errors.As(err, &rej):
		return ev.EventID(), pduResult{Error: rej.Err.Error()}, nil
	case err != nil:
		return "", pduResult{}, err
	}
	return ev.EventID(), pduResult{}, nil
}

// verifyPDU checks the signatures of a PDU; when they are good but the
// content hash does not match, it returns the redacted event instead, as
// the spec says.
func verifyPDU(ctx context.Context, rules roomversion.Rules, ev *event.PDU, keys signing.KeyLookup) (*event.PDU, error) {
	err := signing.VerifyEvent(ctx, rules, ev.JSON(), keys)
	if errors.Is(err, hashing.ErrContentHashMismatch) || errors.Is(err, hashing.ErrMissingContentHash) {
		red, rerr := hashing.Redact(rules, ev.JSON())
		if rerr != nil {
			return ev, fmt.Errorf("redacting an event with a bad content hash: %w", rerr)
		}
		p, perr := event.Parse(rules, red)
		if perr != nil {
			return ev, fmt.Errorf("redacted event: %w", perr)
		}
		return p, nil
	}
	if err != nil {
		return ev, fmt.Errorf("signature check failed: %w", err)
	}
	return ev, nil
}

var _ = httputil.WriteJSON

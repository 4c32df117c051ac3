package federationapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/federation/inbound"
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
// its room version and the signatures (inbound.Checker.Verify; a content
// hash mismatch keeps the redacted event), the ACL, then the room server's
// auth checks. It returns the
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
	// Steps 1-3 (format, signatures, content hash) are the library's;
	// the room server runs the auth steps against the state it owns.
	res := (&inbound.Checker{Keys: a.rs}).Verify(ctx, rules, [][]byte{raw})[0]
	if res.Outcome != inbound.Accepted {
		id := res.EventID
		if id == "" {
			id = gjson.GetBytes(raw, "event_id").Str // room versions 1 and 2
		}
		a.log.Info("federationapi: PDU dropped", "origin", origin, "event_id", id, "err", res.Err)
		if id != "" {
			return id, pduResult{Error: res.Err.Error()}, nil
		}
		a.RejectedPDUs.Add(1)
		return "", pduResult{}, nil
	}
	ev := res.Event
	state, err := a.rs.CurrentState(roomID)
	if err != nil {
		return "", pduResult{}, err
	}
	if !ACLAllows(state, origin) {
		return ev.EventID(), pduResult{Error: "Forbidden by server ACLs"}, nil
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

var _ = httputil.WriteJSON

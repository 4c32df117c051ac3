package syncapi

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Redactions are applied when events are served, not by rewriting stored
// events: sync_redactions maps a redacted event to the first redaction of
// it the reader consumed, and every reader passes its events through
// ClientEvents.
const redactionSchema = `
CREATE TABLE IF NOT EXISTS sync_redactions (
	target_id TEXT PRIMARY KEY, room_version TEXT NOT NULL,
	redaction_id TEXT NOT NULL, redaction_json TEXT NOT NULL);
`

// redactionTarget returns the event a redaction names, in the room
// version's place for it.
func redactionTarget(rules roomversion.Rules, ev gjson.Result) string {
	if rules.RedactsInContent {
		return ev.Get("content.redacts").Str
	}
	return ev.Get("redacts").Str
}

// recordRedaction notes a consumed redaction event in the transaction.
func recordRedaction(tx *db.Tx, version, eventID string, raw []byte) error {
	rules, err := roomversion.Get(version)
	if err != nil {
		return nil // not a room this server can serve; nothing to apply
	}
	target := redactionTarget(rules, gjson.ParseBytes(raw))
	if target == "" {
		return nil
	}
	_, err = tx.Exec(`INSERT INTO sync_redactions (target_id, room_version, redaction_id, redaction_json) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, target, version, eventID, string(raw))
	return err
}

// Stored is an event as a reader keeps it: its ID and PDU JSON.
type Stored struct {
	ID   string
	JSON []byte
}

type redaction struct {
	version, id string
	raw         []byte
}

// ClientEvents turns stored events of a room into the client format, each
// redacted event stripped by its room version's redaction algorithm
// (hashing.Redact) and carrying its redaction in unsigned.redacted_because.
func (s *SyncAPI) ClientEvents(ctx context.Context, roomID string, evs []Stored) ([]json.RawMessage, error) {
	red, err := s.redactionsOf(ctx, evs)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(evs))
	for _, e := range evs {
		r, ok := red[e.ID]
		if !ok {
			out = append(out, httputil.ClientEvent(e.JSON, roomID, e.ID))
			continue
		}
		out = append(out, redactedClientEvent(e, r, roomID))
	}
	return out, nil
}

func redactedClientEvent(e Stored, r redaction, roomID string) json.RawMessage {
	rules, err := roomversion.Get(r.version)
	if err != nil {
		return httputil.ClientEvent(e.JSON, roomID, e.ID)
	}
	stripped, err := hashing.Redact(rules, e.JSON)
	if err != nil {
		return httputil.ClientEvent(e.JSON, roomID, e.ID)
	}
	ce := httputil.ClientEvent(stripped, roomID, e.ID)
	because := httputil.ClientEvent(r.raw, roomID, r.id)
	withBecause, err := sjson.SetRawBytes(ce, "unsigned.redacted_because", because)
	if err != nil {
		return ce
	}
	return withBecause
}

// redactionsOf looks up which of the events are redacted, in batches.
func (s *SyncAPI) redactionsOf(ctx context.Context, evs []Stored) (map[string]redaction, error) {
	out := map[string]redaction{}
	const batch = 500
	for i := 0; i < len(evs); i += batch {
		part := evs[i:min(i+batch, len(evs))]
		args := make([]any, len(part))
		for j, e := range part {
			args[j] = e.ID
		}
		q := `SELECT target_id, room_version, redaction_id, redaction_json FROM sync_redactions WHERE target_id IN (?` +
			strings.Repeat(", ?", len(part)-1) + `)`
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var target, raw string
			var r redaction
			if err := rows.Scan(&target, &r.version, &r.id, &raw); err != nil {
				rows.Close()
				return nil, err
			}
			r.raw = []byte(raw)
			out[target] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

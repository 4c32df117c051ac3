package event

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/internal/b64"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// Builder describes a new event. Build fills in what the sending server
// computes.
type Builder struct {
	// RoomID is the room; ignored for a room version 12 create event,
	// whose room ID is derived from the event itself.
	RoomID string
	Type   string
	Sender string
	// StateKey is nil for a message event.
	StateKey *string
	// Content is the JSON content object; nil means {}.
	Content []byte
	// PrevEvents and AuthEvents are event IDs.
	PrevEvents, AuthEvents []string
	// ReferenceHashes gives the reference hash of each cited event, which
	// room versions 1-2 put next to each ID. Unused in later versions.
	ReferenceHashes map[string][]byte
	Depth           int64
	// OriginServerTS in milliseconds; 0 means now.
	OriginServerTS int64
	// Redacts is the target of a redaction: top-level before room
	// version 11, content.redacts from 11 (added to Content if missing).
	Redacts string
	// Unsigned, if not nil, is added as the unsigned object (not signed).
	Unsigned []byte
	// Now, if set, replaces time.Now for OriginServerTS.
	Now func() time.Time
}

// Build makes the event: it adds hashes, the event ID for room versions
// 1-2 ("$" + random + ":" + serverName), and the signature of serverName
// with key keyID, and returns the parsed result. Errors are those of
// [Parse] or signing, or wrap [ErrBadField] for an incomplete builder.
func (b *Builder) Build(rules roomversion.Rules, serverName, keyID string, key ed25519.PrivateKey) (*PDU, error) {
	content := b.Content
	if content == nil {
		content = []byte(`{}`)
	}
	if !gjson.ValidBytes(content) || !gjson.ParseBytes(content).IsObject() {
		return nil, fieldErr(ErrBadField, "content", "not a JSON object")
	}
	type ev struct {
		RoomID     string          `json:"room_id,omitempty"`
		Type       string          `json:"type"`
		Sender     string          `json:"sender"`
		StateKey   *string         `json:"state_key,omitempty"`
		Content    json.RawMessage `json:"content"`
		Prev       any             `json:"prev_events"`
		Auth       any             `json:"auth_events"`
		Depth      int64           `json:"depth"`
		TS         int64           `json:"origin_server_ts"`
		Redacts    string          `json:"redacts,omitempty"`
		EventID    string          `json:"event_id,omitempty"`
		Hashes     struct{}        `json:"hashes"`
		Signatures struct{}        `json:"signatures"`
	}
	e := ev{Type: b.Type, Sender: b.Sender, StateKey: b.StateKey, Content: content, Depth: b.Depth, TS: b.OriginServerTS}
	if !(rules.RoomIDFromCreateEvent && b.Type == "m.room.create") {
		if b.RoomID == "" {
			return nil, fieldErr(ErrMissingField, "room_id", "the builder has no RoomID")
		}
		e.RoomID = b.RoomID
	}
	if e.TS == 0 {
		now := time.Now
		if b.Now != nil {
			now = b.Now
		}
		e.TS = now().UnixMilli()
	}
	var err error
	if e.Prev, err = b.refs(rules, b.PrevEvents); err != nil {
		return nil, err
	}
	if e.Auth, err = b.refs(rules, b.AuthEvents); err != nil {
		return nil, err
	}
	if b.Redacts != "" {
		if rules.RedactsInContent {
			if !gjson.GetBytes(content, "redacts").Exists() {
				if e.Content, err = sjson.SetBytes(content, "redacts", b.Redacts); err != nil {
					return nil, err
				}
			}
		} else {
			e.Redacts = b.Redacts
		}
	}
	if rules.EventIDFormat == roomversion.EventIDServerGenerated {
		var r [12]byte
		if _, err := rand.Read(r[:]); err != nil {
			return nil, err
		}
		e.EventID = "$" + b64.URL(r[:]) + ":" + serverName
	}
	raw, err := canonicaljson.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event: building: %w", err)
	}
	signed, err := signing.SignEvent(rules, serverName, keyID, key, raw)
	if err != nil {
		return nil, err
	}
	if b.Unsigned != nil {
		if signed, err = sjson.SetRawBytes(signed, "unsigned", b.Unsigned); err != nil {
			return nil, err
		}
	}
	return Parse(rules, signed)
}

func (b *Builder) refs(rules roomversion.Rules, ids []string) (any, error) {
	if ids == nil {
		ids = []string{}
	}
	if !rules.EventReferencesWithHashes {
		return ids, nil
	}
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		h, ok := b.ReferenceHashes[id]
		if !ok {
			return nil, fieldErr(ErrMissingField, "ReferenceHashes", "room version %s needs the reference hash of %s", rules.ID, id)
		}
		out = append(out, []any{id, map[string]string{"sha256": b64.Std(h)}})
	}
	return out, nil
}

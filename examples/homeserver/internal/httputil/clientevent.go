package httputil

import "encoding/json"

// ClientEvent turns a PDU into the client-server API's event format: the
// event ID and room ID set (a version 3+ PDU carries neither the event ID nor,
// for a version 12 create event, the room ID), federation-only keys removed.
// A redaction event carries redacts both at the top level (where room
// versions 1-10 have it) and in content (where 11+ have it), as the
// client-server spec asks servers to serve it for older and newer clients.
func ClientEvent(raw []byte, roomID, eventID string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	for _, k := range []string{"auth_events", "prev_events", "hashes", "signatures", "depth", "origin"} {
		delete(m, k)
	}
	if _, ok := m["room_id"]; !ok {
		m["room_id"], _ = json.Marshal(roomID)
	}
	m["event_id"], _ = json.Marshal(eventID)
	if string(m["type"]) == `"m.room.redaction"` {
		bothRedacts(m)
	}
	b, _ := json.Marshal(m)
	return b
}

func bothRedacts(m map[string]json.RawMessage) {
	var content map[string]json.RawMessage
	if json.Unmarshal(m["content"], &content) != nil || content == nil {
		content = map[string]json.RawMessage{}
	}
	top, inContent := m["redacts"], content["redacts"]
	switch {
	case top != nil && inContent == nil:
		content["redacts"] = top
		m["content"], _ = json.Marshal(content)
	case top == nil && inContent != nil:
		m["redacts"] = inContent
	}
}

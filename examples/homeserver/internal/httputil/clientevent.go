package httputil

import "encoding/json"

// ClientEvent turns a PDU into the client-server API's event format: the
// event ID and room ID set (a version 3+ PDU carries neither the event ID nor,
// for a version 12 create event, the room ID), federation-only keys removed.
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
	b, _ := json.Marshal(m)
	return b
}

package syncapi

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// Filter is the part of a Matrix filter that /sync applies: which rooms,
// the timeline's limit and event types and senders, the state's event
// types, and lazy-loading of members.
type Filter struct {
	Rooms, NotRooms []string
	Timeline        EventFilter
	State           EventFilter
	LazyLoadMembers bool
}

// EventFilter selects events by type and sender; "*" in a type matches
// any run of characters, and the not_ lists win.
type EventFilter struct {
	Limit                int
	Types, NotTypes      []string
	Senders, NotSenders  []string
	hasTypes, hasSenders bool
}

// ParseFilter reads a filter's JSON. Wrong types are an error.
func ParseFilter(raw []byte) (*Filter, error) {
	if !gjson.ValidBytes(raw) || !gjson.ParseBytes(raw).IsObject() {
		return nil, fmt.Errorf("filter is not a JSON object")
	}
	var f struct {
		Room *struct {
			Rooms    *[]string  `json:"rooms"`
			NotRooms []string   `json:"not_rooms"`
			Timeline *eventJSON `json:"timeline"`
			State    *eventJSON `json:"state"`
		} `json:"room"`
		Presence    *eventJSON `json:"presence"`
		AccountData *eventJSON `json:"account_data"`
		EventFields []string   `json:"event_fields"`
		EventFormat string     `json:"event_format"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if f.EventFormat != "" && f.EventFormat != "client" && f.EventFormat != "federation" {
		return nil, fmt.Errorf("filter: event_format must be client or federation")
	}
	out := &Filter{}
	if f.Room != nil {
		if f.Room.Rooms != nil {
			out.Rooms = *f.Room.Rooms
			if out.Rooms == nil {
				out.Rooms = []string{}
			}
		}
		out.NotRooms = f.Room.NotRooms
		if f.Room.Timeline != nil {
			out.Timeline = f.Room.Timeline.filter()
			if f.Room.Timeline.Limit != nil && *f.Room.Timeline.Limit <= 0 {
				return nil, fmt.Errorf("filter: limit must be positive")
			}
		}
		if f.Room.State != nil {
			out.State = f.Room.State.filter()
			out.LazyLoadMembers = f.Room.State.LazyLoadMembers
		}
	}
	return out, nil
}

type eventJSON struct {
	Limit           *int      `json:"limit"`
	Types           *[]string `json:"types"`
	NotTypes        []string  `json:"not_types"`
	Senders         *[]string `json:"senders"`
	NotSenders      []string  `json:"not_senders"`
	LazyLoadMembers bool      `json:"lazy_load_members"`
}

func (e *eventJSON) filter() EventFilter {
	f := EventFilter{NotTypes: e.NotTypes, NotSenders: e.NotSenders}
	if e.Limit != nil {
		f.Limit = *e.Limit
	}
	if e.Types != nil {
		f.Types, f.hasTypes = *e.Types, true
	}
	if e.Senders != nil {
		f.Senders, f.hasSenders = *e.Senders, true
	}
	return f
}

// roomAllowed reports whether the filter lets the room through.
func (f *Filter) roomAllowed(roomID string) bool {
	if f == nil {
		return true
	}
	for _, r := range f.NotRooms {
		if r == roomID {
			return false
		}
	}
	if f.Rooms == nil {
		return true
	}
	for _, r := range f.Rooms {
		if r == roomID {
			return true
		}
	}
	return false
}

// Matches reports whether an event of the type and sender passes.
func (f *EventFilter) Matches(evType, sender string) bool {
	for _, t := range f.NotTypes {
		if globMatch(t, evType) {
			return false
		}
	}
	for _, s := range f.NotSenders {
		if s == sender {
			return false
		}
	}
	if f.hasTypes {
		ok := false
		for _, t := range f.Types {
			if globMatch(t, evType) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.hasSenders {
		ok := false
		for _, s := range f.Senders {
			if s == sender {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (f *EventFilter) empty() bool {
	return !f.hasTypes && !f.hasSenders && len(f.NotTypes) == 0 && len(f.NotSenders) == 0
}

// globMatch matches s against a pattern where "*" is any run of
// characters.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

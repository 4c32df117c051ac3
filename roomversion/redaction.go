package roomversion

import "slices"

// Redaction is a room version's redaction algorithm, as keep-lists: the
// top-level keys that survive redaction and, per event type, the content
// keys that survive. Content of other event types becomes {}.
//
// The lists are unexported so that the table cannot be changed through a
// Rules value; read them through the methods.
type Redaction struct {
	topLevel []string
	content  []contentKeep
}

type contentKeep struct {
	eventType string
	all       bool       // keep the whole content (m.room.create from 11)
	paths     [][]string // kept paths; a path of two keeps only that sub-key
}

// KeepsTopLevel reports whether the top-level key survives redaction.
func (r Redaction) KeepsTopLevel(key string) bool {
	for _, k := range r.topLevel {
		if k == key {
			return true
		}
	}
	return false
}

// TopLevelKeys returns the top-level keys that survive redaction, sorted.
func (r Redaction) TopLevelKeys() []string {
	return append([]string(nil), r.topLevel...)
}

// ContentKeep says which content keys of eventType survive redaction. If all
// is true the whole content is kept. Otherwise paths lists what is kept: a
// path of one key keeps that key and its whole value; a path of two keys,
// such as ["third_party_invite", "signed"], keeps the first key with only
// the second key inside it (when the first key's value is an object that has
// it). The returned slices are fresh copies.
func (r Redaction) ContentKeep(eventType string) (paths [][]string, all bool) {
	for _, c := range r.content {
		if c.eventType != eventType {
			continue
		}
		out := make([][]string, len(c.paths))
		for i, p := range c.paths {
			out[i] = append([]string(nil), p...)
		}
		return out, c.all
	}
	return nil, false
}

// EventTypes returns the event types whose content is partly or wholly kept.
func (r Redaction) EventTypes() []string {
	out := make([]string, len(r.content))
	for i, c := range r.content {
		out[i] = c.eventType
	}
	return out
}

// with returns a copy of r where eventType keeps the given paths (replacing
// any previous entry); all keeps the whole content.
func (r Redaction) with(eventType string, all bool, paths ...[]string) Redaction {
	out := Redaction{topLevel: r.topLevel}
	replaced := false
	for _, c := range r.content {
		if c.eventType == eventType {
			c = contentKeep{eventType: eventType, all: all, paths: paths}
			replaced = true
		}
		out.content = append(out.content, c)
	}
	if !replaced {
		out.content = append(out.content, contentKeep{eventType: eventType, all: all, paths: paths})
	}
	return out
}

// without returns a copy of r where eventType's content is wholly removed.
func (r Redaction) without(eventType string) Redaction {
	out := Redaction{topLevel: r.topLevel}
	for _, c := range r.content {
		if c.eventType != eventType {
			out.content = append(out.content, c)
		}
	}
	return out
}

func keys(k ...string) [][]string {
	out := make([][]string, len(k))
	for i, s := range k {
		out[i] = []string{s}
	}
	return out
}

// equal reports whether r and o keep the same keys, list by list.
func (r Redaction) equal(o Redaction) bool {
	return slices.Equal(r.topLevel, o.topLevel) &&
		slices.EqualFunc(r.content, o.content, func(a, b contentKeep) bool {
			return a.eventType == b.eventType && a.all == b.all &&
				slices.EqualFunc(a.paths, b.paths, slices.Equal[[]string])
		})
}

package hashing

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// Redact returns the canonical JSON of the event as the room version's
// redaction algorithm leaves it: only the top-level keys the version keeps,
// and in content only the keys it keeps for the event's type. The result
// always has a content object. Errors wrap [ErrNotObject] or a
// canonicaljson sentinel.
func Redact(rules roomversion.Rules, event []byte) ([]byte, error) {
	return appendRedacted(make([]byte, 0, len(event)), rules, event, false)
}

// SigningForm returns what an event signature covers, which is also what
// the reference hash hashes: the canonical JSON of the redacted event
// without signatures and unsigned. It is [Redact] and
// canonicaljson.Append with those keys omitted, in one pass.
func SigningForm(rules roomversion.Rules, event []byte) ([]byte, error) {
	return appendRedacted(make([]byte, 0, len(event)), rules, event, true)
}

// appendRedacted is [Redact] into a caller's buffer, optionally without
// the signatures and unsigned keys (what signing and the reference hash
// cover).
func appendRedacted(dst []byte, rules roomversion.Rules, event []byte, dropSignatures bool) ([]byte, error) {
	if !gjson.ValidBytes(event) {
		return dst, fmt.Errorf("%w: invalid JSON", ErrNotObject)
	}
	top := gjson.ParseBytes(event)
	if !top.IsObject() {
		return dst, ErrNotObject
	}
	// The event type decides the content keep-list.
	var eventType string
	top.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "type" {
			eventType = v.Str
			return false
		}
		return true
	})
	b := make([]byte, 0, len(event)+16)
	b = append(b, '{')
	first := true
	var err error
	top.ForEach(func(k, v gjson.Result) bool {
		if !rules.Redaction.KeepsTopLevel(k.Str) {
			return true
		}
		if dropSignatures && (k.Str == "signatures" || k.Str == "unsigned") {
			return true
		}
		if k.Str == "content" {
			return true // written below
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, k.Raw...)
		b = append(b, ':')
		b = append(b, v.Raw...)
		return true
	})
	if !first {
		b = append(b, ',')
	}
	b = append(b, `"content":`...)
	b, err = appendRedactedContent(b, rules, eventType, top)
	if err != nil {
		return dst, err
	}
	b = append(b, '}')
	out, err := canonicaljson.Append(dst, b, canonicaljson.Options{})
	if err != nil {
		return dst, fmt.Errorf("hashing: redact: %w", err)
	}
	return out, nil
}

func appendRedactedContent(b []byte, rules roomversion.Rules, eventType string, top gjson.Result) ([]byte, error) {
	var content gjson.Result
	found := false
	top.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "content" {
			content, found = v, true
			return false
		}
		return true
	})
	if !found {
		return append(b, '{', '}'), nil
	}
	if !content.IsObject() {
		return b, fmt.Errorf("%w: content is not an object", ErrNotObject)
	}
	paths, all := rules.Redaction.ContentKeep(eventType)
	if all {
		return append(b, content.Raw...), nil
	}
	b = append(b, '{')
	first := true
	content.ForEach(func(k, v gjson.Result) bool {
		for _, p := range paths {
			if p[0] != k.Str {
				continue
			}
			if len(p) == 1 {
				if !first {
					b = append(b, ',')
				}
				first = false
				b = append(b, k.Raw...)
				b = append(b, ':')
				b = append(b, v.Raw...)
				return true
			}
			// A two-key path keeps the object with only its sub-key.
			if !v.IsObject() {
				return true
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, k.Raw...)
			b = append(b, ':', '{')
			sub := false
			v.ForEach(func(sk, sv gjson.Result) bool {
				if sk.Str == p[1] && !sub {
					b = append(b, sk.Raw...)
					b = append(b, ':')
					b = append(b, sv.Raw...)
					sub = true
				}
				return true
			})
			b = append(b, '}')
			return true
		}
		return true
	})
	return append(b, '}'), nil
}

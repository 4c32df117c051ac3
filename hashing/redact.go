package hashing

import (
	"crypto/sha256"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/internal/bytesconv"
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
	b, err := redactMembers(make([]byte, 0, len(event)+16), rules, top, dropSignatures, false)
	if err != nil {
		return dst, err
	}
	out, err := canonicaljson.Append(dst, b, canonicaljson.Options{})
	if err != nil {
		return dst, fmt.Errorf("hashing: redact: %w", err)
	}
	return out, nil
}

// redactMembers writes the object top as redaction leaves it, members in
// their input order, content where it stands or, if absent, as {} at the
// end, or when sorted (top is canonical, and then so is the output) before
// the first key that sorts after it.
func redactMembers(b []byte, rules roomversion.Rules, top gjson.Result, dropSignatures, sorted bool) ([]byte, error) {
	// The event type decides the content keep-list.
	var eventType string
	top.ForEach(func(k, v gjson.Result) bool {
		if k.Str == "type" {
			eventType = v.Str
			return false
		}
		return true
	})
	b = append(b, '{')
	first := true
	sawContent := false
	var err error
	member := func(k gjson.Result) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, k.Raw...)
		b = append(b, ':')
	}
	top.ForEach(func(k, v gjson.Result) bool {
		if sorted && !sawContent && k.Str > "content" {
			sawContent = true
			member(gjson.Result{Raw: `"content"`})
			b = append(b, '{', '}')
		}
		if k.Str == "content" {
			sawContent = true
			member(k)
			b, err = appendRedactedContent(b, rules, eventType, v)
			return err == nil
		}
		if !rules.Redaction.KeepsTopLevel(k.Str) || dropSignatures && (k.Str == "signatures" || k.Str == "unsigned") {
			return true
		}
		member(k)
		b = append(b, v.Raw...)
		return true
	})
	if err != nil {
		return b, err
	}
	if !sawContent {
		member(gjson.Result{Raw: `"content"`})
		b = append(b, '{', '}')
	}
	return append(b, '}'), nil
}

func appendRedactedContent(b []byte, rules roomversion.Rules, eventType string, content gjson.Result) ([]byte, error) {
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

// SigningFormAndContentHash returns [SigningForm] and [ContentHash] of the
// event from one canonical JSON pass, for verifiers that need both. It
// succeeds exactly when both of them do (FuzzSigningFormAndContentHash
// checks that); errors wrap [ErrNotObject] or a canonicaljson sentinel.
func SigningFormAndContentHash(rules roomversion.Rules, event []byte) (signingForm, contentHash []byte, err error) {
	canon, err := canonicaljson.Append(make([]byte, 0, len(event)), event, canonicaljson.Options{Omit: omitForSigning})
	if err != nil {
		return nil, nil, fmt.Errorf("hashing: %w", err)
	}
	// canon is ours and never changes, and nothing parsed from it
	// outlives this call except copies, so gjson may read it in place.
	top := gjson.Parse(bytesconv.String(canon))
	if !top.IsObject() {
		return nil, nil, ErrNotObject
	}
	signingForm, err = redactMembers(make([]byte, 0, len(canon)), rules, top, true, true)
	if err != nil {
		return nil, nil, err
	}
	// The content hash covers the canonical event without hashes: canon
	// with that member, and a comma next to it, cut out.
	cutFrom, cutTo := len(canon), len(canon)
	top.ForEach(func(k, v gjson.Result) bool {
		if k.Str != "hashes" {
			return true
		}
		cutFrom, cutTo = k.Index, v.Index+len(v.Raw)
		if canon[cutTo] == ',' {
			cutTo++
		} else if canon[cutFrom-1] == ',' {
			cutFrom--
		}
		return false
	})
	h := sha256.New()
	h.Write(canon[:cutFrom])
	h.Write(canon[cutTo:])
	return signingForm, h.Sum(nil), nil
}

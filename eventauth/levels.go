package eventauth

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/internal/bytesconv"
)

// levels answers power level questions against the checked state.
type levels struct {
	view *event.PowerLevels // nil: the room has no power levels event

	invite, kick, ban, redact int64
}

// loadLevels reads the state's power levels (or the defaults when there is
// no power levels event).
func (c *checker) loadLevels() error {
	pl := c.statePowerLevels()
	if pl == nil {
		c.pl = levels{invite: 0, kick: 50, ban: 50, redact: 50}
		return nil
	}
	view, err := pl.PowerLevels()
	if err != nil {
		return fmt.Errorf("%w: power levels %s: %w", ErrBadState, pl.EventID(), err)
	}
	c.pl = levels{view: view, invite: view.Invite, kick: view.Kick, ban: view.Ban, redact: view.Redact}
	return nil
}

// userLevel returns userID's power level. From room version 12 the creators'
// level is infinite; without a power levels event the creator has 100 in
// earlier versions and everyone else 0.
func (c *checker) userLevel(userID string) int64 {
	l := &c.pl
	if c.v.PrivilegedCreators && c.isCreator(userID) {
		return infinite
	}
	if l.view == nil {
		if !c.v.PrivilegedCreators && c.isCreator(userID) {
			return 100
		}
		return 0
	}
	return l.view.UserLevel(userID)
}

// eventLevel returns the level needed to send an event of type evType.
func (c *checker) eventLevel(evType string, isState bool) int64 {
	l := &c.pl
	if l.view == nil {
		if isState {
			return 50
		}
		return 0
	}
	return l.view.EventLevel(evType, isState)
}

// isCreator reports whether userID is a room creator: content.creator of the
// create event before room version 11, its sender from 11, and its sender
// or any content.additional_creators entry from 12.
func (c *checker) isCreator(userID string) bool {
	create := c.create
	if create == nil {
		return false
	}
	switch {
	case c.v.PrivilegedCreators:
		if create.Sender() == userID {
			return true
		}
		found := false
		topLevel(create.Content(), "additional_creators").ForEach(func(_, u gjson.Result) bool {
			found = u.Type == gjson.String && u.Str == userID
			return !found
		})
		return found
	case c.v.CreatorFromSender:
		return create.Sender() == userID
	}
	s, ok := contentString(create.Content(), "creator")
	return ok && s == userID
}

// isFirstJoiner reports whether userID may make the first join right after
// the create event: the creator (content.creator before room version 11,
// the create event's sender from 11).
func (c *checker) isFirstJoiner(userID string) bool {
	if c.v.CreatorFromSender {
		return c.create.Sender() == userID
	}
	s, ok := contentString(c.create.Content(), "creator")
	return ok && s == userID
}

// federates reports whether the create event allows other servers: false
// only when content["m.federate"] is the JSON value false.
func federates(create *event.PDU) bool {
	return topLevel(create.Content(), "m.federate").Type != gjson.False
}

// topLevel returns the value of a top-level key of a JSON object without
// copying: the result's strings alias content, which is an immutable part
// of a PDU. A key is matched literally (no path syntax), and the first
// occurrence wins.
func topLevel(content []byte, key string) gjson.Result {
	var out gjson.Result
	if len(content) == 0 {
		return out
	}
	js := bytesconv.String(content)
	// Fast path: a key that appears nowhere, in a content without escape
	// sequences (which could spell it differently), is absent.
	if !strings.Contains(js, key) && strings.IndexByte(js, '\\') < 0 {
		return out
	}
	gjson.Parse(js).ForEach(func(k, v gjson.Result) bool {
		if k.Str == key {
			out = v
			return false
		}
		return true
	})
	return out
}

// contentString returns the string value of a top-level key of content.
func contentString(content []byte, key string) (string, bool) {
	r := topLevel(content, key)
	return r.Str, r.Type == gjson.String
}

// contentHas reports whether content has the top-level key.
func contentHas(content []byte, key string) bool {
	return topLevel(content, key).Exists()
}

// signedBy reports whether c.ev is signed by server.
func (c *checker) signedBy(server string) error {
	if c.opts.VerifyServerSignature != nil {
		return c.opts.VerifyServerSignature(c.ev, server)
	}
	found := false
	topLevel(c.ev.JSON(), "signatures").ForEach(func(k, v gjson.Result) bool {
		if k.Str == server && v.IsObject() {
			v.ForEach(func(_, sig gjson.Result) bool {
				found = sig.Type == gjson.String && sig.Str != ""
				return !found
			})
		}
		return !found
	})
	if !found {
		return fmt.Errorf("no signature from %s", server)
	}
	return nil
}

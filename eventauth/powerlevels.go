package eventauth

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// infinite is the power level of a room creator from room version 12. No
// other level can reach it: levels are integers in the canonical JSON range
// from version 6, and creators only exist from 12.
const infinite = math.MaxInt64

func levelString(l int64) string {
	if l == infinite {
		return "infinite (room creator)"
	}
	return strconv.FormatInt(l, 10)
}

// scalarLevelKeys are the seven scalar properties the power level change
// rules compare, in the spec's order.
func scalarLevelKeys() [7]string {
	return [7]string{"users_default", "events_default", "state_default", "ban", "redact", "kick", "invite"}
}

// checkPowerLevels applies the m.room.power_levels rules (rule 10 in room
// versions 1-5 and 12, rule 9 in 6-11). senderLevel is the sender's level
// in the current state.
func (c *checker) checkPowerLevels(senderLevel int64) (rule, error) {
	v := c.v
	newView, err := c.ev.PowerLevels()
	if err != nil {
		// The view and parseLevelsContent accept the same contents
		// (FuzzPowerLevelsContent); the latter names the rule broken.
		_, r, reason := parseLevelsContent(*v, c.ev.Content())
		if reason == "" {
			r, reason = rPLUsers, err.Error()
		}
		return c.reject(r, reason)
	}
	newPL := levelsFromView(newView)
	if v.PrivilegedCreators {
		for u := range newPL.users {
			if c.isCreator(u) {
				return c.reject(rPLCreators, fmt.Sprintf(
					"users lists %s, a room creator, whose power level cannot be set", u))
			}
		}
	}
	oldEv := c.statePowerLevels()
	if oldEv == nil {
		return rPLNoPrevious, nil
	}
	oldView, err := oldEv.PowerLevels()
	if err != nil {
		return rNone, fmt.Errorf("%w: the current power levels %s cannot be read: %w", ErrBadState, oldEv.EventID(), err)
	}
	oldPL := levelsFromView(oldView)

	for i, key := range scalarLevelKeys() {
		o, n := oldPL.scalars[i], newPL.scalars[i]
		if o == n {
			continue
		}
		if o.set && o.v > senderLevel {
			return c.reject(rPLScalarsOld, fmt.Sprintf(
				"%s cannot change %s: its current value %d is above their power level %s",
				c.sender, key, o.v, levelString(senderLevel)))
		}
		if n.set && n.v > senderLevel {
			return c.reject(rPLScalarsNew, fmt.Sprintf(
				"%s cannot set %s to %d, above their power level %s",
				c.sender, key, n.v, levelString(senderLevel)))
		}
	}

	maps := [2]string{"events", "notifications"}
	nmaps := 1
	if v.NotificationsPowerLevels {
		nmaps = 2
	}
	for m := 0; m < nmaps; m++ {
		for k, o := range oldPL.maps[m] {
			if m == 1 && k == "room" && oldPL.implicitNotificationsRoom {
				continue
			}
			if n, ok := newPL.level(m, k); (!ok || n != o) && o > senderLevel {
				return c.reject(rPLMapsOldCheck, fmt.Sprintf(
					"%s cannot change %s[%q]: its current value %d is above their power level %s",
					c.sender, maps[m], k, o, levelString(senderLevel)))
			}
		}
	}
	for m := 0; m < nmaps; m++ {
		for k, n := range newPL.maps[m] {
			if m == 1 && k == "room" && newPL.implicitNotificationsRoom {
				continue
			}
			if o, ok := oldPL.level(m, k); (!ok || n != o) && n > senderLevel {
				return c.reject(rPLMapsNewCheck, fmt.Sprintf(
					"%s cannot set %s[%q] to %d, above their power level %s",
					c.sender, maps[m], k, n, levelString(senderLevel)))
			}
		}
	}

	for u, o := range oldPL.users {
		if u == c.sender {
			continue
		}
		if n, ok := newPL.users[u]; (!ok || n != o) && o >= senderLevel {
			return c.reject(rPLUsersOldCheck, fmt.Sprintf(
				"%s cannot change the power level of %s: it is %d, not below their own %s",
				c.sender, u, o, levelString(senderLevel)))
		}
	}
	for u, n := range newPL.users {
		if o, ok := oldPL.users[u]; (!ok || n != o) && n > senderLevel {
			return c.reject(rPLUsersNewCheck, fmt.Sprintf(
				"%s cannot give %s power level %d, above their own %s",
				c.sender, u, n, levelString(senderLevel)))
		}
	}
	return rPLAllow, nil
}

// optLevel is a power level property that may be absent.
type optLevel struct {
	set bool
	v   int64
}

// levelsContent is the content of a power levels event as the change rules
// compare it: what is present, not what defaults fill in.
type levelsContent struct {
	scalars [7]optLevel
	maps    [2]map[string]int64 // events, notifications
	users   map[string]int64

	// implicitNotificationsRoom: maps[1]["room"] is the view's default,
	// not part of the content.
	implicitNotificationsRoom bool
}

// levelsFromView returns what a power levels view's content says, in the
// order of scalarLevelKeys. It shares the view's maps.
func levelsFromView(pl *event.PowerLevels) levelsContent {
	x := pl.Explicit
	opt := func(set bool, v int64) optLevel {
		if !set {
			return optLevel{}
		}
		return optLevel{set: true, v: v}
	}
	return levelsContent{
		scalars: [7]optLevel{
			opt(x.UsersDefault, pl.UsersDefault), opt(x.EventsDefault, pl.EventsDefault),
			opt(x.StateDefault, pl.StateDefault), opt(x.Ban, pl.Ban), opt(x.Redact, pl.Redact),
			opt(x.Kick, pl.Kick), opt(x.Invite, pl.Invite),
		},
		maps:                      [2]map[string]int64{pl.Events, pl.Notifications},
		users:                     pl.Users,
		implicitNotificationsRoom: !x.NotificationsRoom,
	}
}

// level returns the level of key k in map m (0 events, 1 notifications)
// if the content sets it.
func (l *levelsContent) level(m int, k string) (int64, bool) {
	if m == 1 && k == "room" && l.implicitNotificationsRoom {
		return 0, false
	}
	n, ok := l.maps[m][k]
	return n, ok
}

// parseLevelsContent reads and validates a power levels content for room
// version v. On failure it returns the rule that rejects it and why. From
// room version 10 the rules check every property (rules 1-3); before it the
// spec's rule only covers users, and a scalar or events value that cannot
// be read as a level is rejected under that same rule rather than guessed.
func parseLevelsContent(v roomversion.Rules, content []byte) (levelsContent, rule, string) {
	var out levelsContent
	badValue := rPLUsers
	if v.IntegerPowerLevels {
		badValue = rPLScalarsInteger
	}
	root := gjson.ParseBytes(content)
	for i, key := range scalarLevelKeys() {
		r := root.Get(key)
		if !r.Exists() {
			continue
		}
		l, ok := parseLevel(v, r)
		if !ok {
			return out, badValue, fmt.Sprintf("power levels %s is %s, not an integer", key, truncate(r.Raw))
		}
		out.scalars[i] = optLevel{set: true, v: l}
	}
	if v.IntegerPowerLevels {
		badValue = rPLMapsInteger
	}
	maps := [2]string{"events", "notifications"}
	for m, name := range maps {
		r := root.Get(name)
		if !r.Exists() {
			continue
		}
		// notifications is only compared from room version 6, but it is
		// read (and so validated) in every version, as the power levels
		// view of package event reads it.
		if !r.IsObject() {
			return out, badValue, fmt.Sprintf("power levels %s is not an object", name)
		}
		mm := make(map[string]int64)
		reason := ""
		r.ForEach(func(k, val gjson.Result) bool {
			l, ok := parseLevel(v, val)
			if !ok {
				reason = fmt.Sprintf("power levels %s[%q] is %s, not an integer", name, truncate(k.Str), truncate(val.Raw))
				return false
			}
			mm[k.Str] = l
			return true
		})
		if reason != "" {
			return out, badValue, reason
		}
		out.maps[m] = mm
	}
	users := root.Get("users")
	out.users = map[string]int64{}
	if users.Exists() {
		if !users.IsObject() {
			return out, rPLUsers, "power levels users is not an object"
		}
		reason := ""
		users.ForEach(func(k, val gjson.Result) bool {
			if _, err := id.ParseUserID(k.Str); err != nil {
				reason = fmt.Sprintf("power levels users key %q is not a valid user ID", truncate(k.Str))
				return false
			}
			l, ok := parseLevel(v, val)
			if !ok {
				reason = fmt.Sprintf("power levels users[%q] is %s, not an integer", truncate(k.Str), truncate(val.Raw))
				return false
			}
			out.users[k.Str] = l
			return true
		})
		if reason != "" {
			return out, rPLUsers, reason
		}
	}
	return out, rNone, ""
}

// parseLevel reads one power level value as room version v allows: a JSON
// integer always; before IntegerPowerLevels also a string holding an
// integer (optional sign, surrounding whitespace); before
// StrictCanonicalJSON also a number with a fraction or exponent, truncated
// toward zero (within ±2^53). Values outside the int64 range are not
// levels. What it accepts, event.ParsePowerLevels accepts too, so that an
// accepted power levels event can always be read back from the state.
func parseLevel(v roomversion.Rules, r gjson.Result) (int64, bool) {
	switch r.Type {
	case gjson.Number:
		raw := r.Raw
		if !strings.ContainsAny(raw, ".eE") {
			n, err := strconv.ParseInt(raw, 10, 64)
			return n, err == nil
		}
		if v.StrictCanonicalJSON {
			return 0, false
		}
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false
		}
		f = math.Trunc(f)
		if f > 1<<53 || f < -(1<<53) {
			return 0, false
		}
		return int64(f), true
	case gjson.String:
		if v.IntegerPowerLevels {
			return 0, false
		}
		s := strings.TrimSpace(r.Str)
		digits := s
		if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
			digits = digits[1:]
		}
		if digits == "" {
			return 0, false
		}
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	return 0, false
}

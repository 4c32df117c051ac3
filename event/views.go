package event

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/gomatrixlib/gomatrixlib/id"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// views caches the parsed content views of a PDU.
type views struct {
	plOnce sync.Once
	pl     *PowerLevels
	plErr  error
}

func (p *PDU) want(eventType string) error {
	if p.typ != eventType {
		return fmt.Errorf("%w: %s is not %s", ErrNotApplicable, p.typ, eventType)
	}
	return nil
}

func contentErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %q: %s", ErrBadContent, field, fmt.Sprintf(format, args...))
}

// Create is the content of an m.room.create event.
type Create struct {
	// Creator is content.creator, or from room version 11 the sender.
	Creator string
	// RoomVersion is content.room_version, "1" when absent.
	RoomVersion string
	// Federate is content["m.federate"], true when absent.
	Federate bool
	// AdditionalCreators is content.additional_creators (room version 12).
	AdditionalCreators []string
	// PredecessorRoomID is content.predecessor.room_id, or "".
	PredecessorRoomID string
	// Type is content.type (for example "m.space"), or "".
	Type string
}

// CreateContent returns the create event's content. Errors wrap
// [ErrNotApplicable] or [ErrBadContent].
func (p *PDU) CreateContent() (*Create, error) {
	if err := p.want("m.room.create"); err != nil {
		return nil, err
	}
	c := gjson.ParseBytes(p.content)
	out := &Create{RoomVersion: "1", Federate: true}
	if p.rules.CreatorFromSender {
		out.Creator = p.sender
	} else {
		v := c.Get("creator")
		if v.Type != gjson.String {
			return nil, contentErr("creator", "required string in room version %s", p.rules.ID)
		}
		out.Creator = v.Str
	}
	if v := c.Get("room_version"); v.Exists() {
		if v.Type != gjson.String {
			return nil, contentErr("room_version", "not a string")
		}
		out.RoomVersion = v.Str
	}
	if v := c.Get(`m\.federate`); v.Exists() {
		if !v.IsBool() {
			return nil, contentErr("m.federate", "not a boolean")
		}
		out.Federate = v.Bool()
	}
	if v := c.Get("type"); v.Type == gjson.String {
		out.Type = v.Str
	}
	if v := c.Get("predecessor.room_id"); v.Type == gjson.String {
		out.PredecessorRoomID = v.Str
	}
	if p.rules.PrivilegedCreators {
		if v := c.Get("additional_creators"); v.Exists() {
			if !v.IsArray() {
				return nil, contentErr("additional_creators", "not a list")
			}
			var err error
			v.ForEach(func(_, u gjson.Result) bool {
				if u.Type != gjson.String {
					err = contentErr("additional_creators", "entries must be strings")
					return false
				}
				if _, e := id.ParseUserID(u.Str); e != nil {
					err = contentErr("additional_creators", "%v", e)
					return false
				}
				out.AdditionalCreators = append(out.AdditionalCreators, u.Str)
				return true
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Member is the content of an m.room.member event.
type Member struct {
	Membership  string
	DisplayName string
	AvatarURL   string
	IsDirect    bool
	// JoinAuthorisedViaUsersServer is the user of another server who
	// authorised a restricted join (room version 8 and later), or "".
	JoinAuthorisedViaUsersServer string
	// ThirdPartyInvite is set when the event claims a third-party invite.
	ThirdPartyInvite *MemberThirdPartyInvite
}

// MemberThirdPartyInvite is content.third_party_invite of a member event.
type MemberThirdPartyInvite struct {
	DisplayName string
	// Signed is the raw signed object (mxid, token, signatures).
	Signed []byte
	// MXID and Token are read from the signed object.
	MXID, Token string
}

// MemberContent returns the member event's content. Errors wrap
// [ErrNotApplicable] or [ErrBadContent].
func (p *PDU) MemberContent() (*Member, error) {
	if err := p.want("m.room.member"); err != nil {
		return nil, err
	}
	c := gjson.ParseBytes(p.content)
	m := c.Get("membership")
	if m.Type != gjson.String {
		return nil, contentErr("membership", "required string")
	}
	out := &Member{Membership: m.Str}
	out.DisplayName = c.Get("displayname").Str
	out.AvatarURL = c.Get("avatar_url").Str
	out.IsDirect = c.Get("is_direct").Type == gjson.True
	if v := c.Get("join_authorised_via_users_server"); v.Exists() {
		if v.Type != gjson.String {
			return nil, contentErr("join_authorised_via_users_server", "not a string")
		}
		out.JoinAuthorisedViaUsersServer = v.Str
	}
	if v := c.Get("third_party_invite"); v.Exists() {
		if !v.IsObject() {
			return nil, contentErr("third_party_invite", "not an object")
		}
		signed := v.Get("signed")
		if !signed.IsObject() {
			return nil, contentErr("third_party_invite.signed", "required object")
		}
		out.ThirdPartyInvite = &MemberThirdPartyInvite{
			DisplayName: v.Get("display_name").Str,
			Signed:      []byte(signed.Raw),
			MXID:        signed.Get("mxid").Str,
			Token:       signed.Get("token").Str,
		}
	}
	return out, nil
}

// JoinRules is the content of an m.room.join_rules event.
type JoinRules struct {
	JoinRule string
	// Allow lists the conditions of a restricted or knock_restricted room.
	Allow []AllowCondition
}

// AllowCondition is one entry of content.allow.
type AllowCondition struct {
	Type   string // "m.room_membership" is the one the spec defines
	RoomID string
}

// JoinRules returns the join rules event's content. Errors wrap
// [ErrNotApplicable] or [ErrBadContent].
func (p *PDU) JoinRules() (*JoinRules, error) {
	if err := p.want("m.room.join_rules"); err != nil {
		return nil, err
	}
	c := gjson.ParseBytes(p.content)
	jr := c.Get("join_rule")
	if jr.Type != gjson.String {
		return nil, contentErr("join_rule", "required string")
	}
	out := &JoinRules{JoinRule: jr.Str}
	if a := c.Get("allow"); a.IsArray() {
		a.ForEach(func(_, e gjson.Result) bool {
			if e.IsObject() {
				out.Allow = append(out.Allow, AllowCondition{Type: e.Get("type").Str, RoomID: e.Get("room_id").Str})
			}
			return true
		})
	}
	return out, nil
}

// ThirdPartyInvite is the content of an m.room.third_party_invite event.
type ThirdPartyInvite struct {
	DisplayName    string
	KeyValidityURL string
	// PublicKeys holds public_key and every public_keys[].public_key, in
	// the base64 form the event carries.
	PublicKeys []string
}

// ThirdPartyInvite returns the third-party invite event's content. Errors
// wrap [ErrNotApplicable] or [ErrBadContent].
func (p *PDU) ThirdPartyInvite() (*ThirdPartyInvite, error) {
	if err := p.want("m.room.third_party_invite"); err != nil {
		return nil, err
	}
	c := gjson.ParseBytes(p.content)
	out := &ThirdPartyInvite{DisplayName: c.Get("display_name").Str, KeyValidityURL: c.Get("key_validity_url").Str}
	if v := c.Get("public_key"); v.Type == gjson.String {
		out.PublicKeys = append(out.PublicKeys, v.Str)
	}
	c.Get("public_keys").ForEach(func(_, e gjson.Result) bool {
		if k := e.Get("public_key"); k.Type == gjson.String {
			out.PublicKeys = append(out.PublicKeys, k.Str)
		}
		return true
	})
	return out, nil
}

// HistoryVisibility returns content.history_visibility of an
// m.room.history_visibility event. Errors wrap [ErrNotApplicable] or
// [ErrBadContent].
func (p *PDU) HistoryVisibility() (string, error) {
	if err := p.want("m.room.history_visibility"); err != nil {
		return "", err
	}
	v := gjson.GetBytes(p.content, "history_visibility")
	if v.Type != gjson.String {
		return "", contentErr("history_visibility", "required string")
	}
	return v.Str, nil
}

// PowerLevels is the content of an m.room.power_levels event with the
// spec's defaults filled in.
type PowerLevels struct {
	Ban, Kick, Redact, Invite                 int64
	EventsDefault, StateDefault, UsersDefault int64
	Users                                     map[string]int64
	Events                                    map[string]int64
	Notifications                             map[string]int64

	// Explicit tells which of the defaulted properties the content sets
	// itself. The power level change rules compare what the content
	// says, so a property left to its default differs from one set to the
	// default's value. (Users and Events only ever hold what the content
	// sets.)
	Explicit ExplicitLevels
}

// ExplicitLevels records which defaulted power levels properties an
// m.room.power_levels content sets itself.
type ExplicitLevels struct {
	Ban, Kick, Redact, Invite                 bool
	EventsDefault, StateDefault, UsersDefault bool
	// NotificationsRoom: notifications.room is in the content;
	// otherwise Notifications["room"] holds the default, 50.
	NotificationsRoom bool
}

// DefaultPowerLevels returns the levels of a room without a power levels
// event: the given creators at 100, everyone else at 0, and the spec's
// defaults for the rest.
func DefaultPowerLevels(creators ...string) *PowerLevels {
	pl := &PowerLevels{Ban: 50, Kick: 50, Redact: 50, StateDefault: 50,
		Users: map[string]int64{}, Events: map[string]int64{}, Notifications: map[string]int64{"room": 50}}
	for _, c := range creators {
		pl.Users[c] = 100
	}
	return pl
}

// UserLevel returns the user's level: users[userID] or users_default.
func (pl *PowerLevels) UserLevel(userID string) int64 {
	if l, ok := pl.Users[userID]; ok {
		return l
	}
	return pl.UsersDefault
}

// EventLevel returns the level needed to send an event of the type:
// events[eventType], or state_default / events_default.
func (pl *PowerLevels) EventLevel(eventType string, isState bool) int64 {
	if l, ok := pl.Events[eventType]; ok {
		return l
	}
	if isState {
		return pl.StateDefault
	}
	return pl.EventsDefault
}

// PowerLevels returns the power levels event's content with defaults.
// Levels must be integers; before room version 10 (rules.IntegerPowerLevels)
// strings holding an integer are accepted too, and in versions without
// strict canonical JSON floats are truncated, as older servers did. The
// result is shared: callers must not modify it. Errors wrap
// [ErrNotApplicable] or [ErrBadContent].
func (p *PDU) PowerLevels() (*PowerLevels, error) {
	if err := p.want("m.room.power_levels"); err != nil {
		return nil, err
	}
	p.views.plOnce.Do(func() {
		p.views.pl, p.views.plErr = ParsePowerLevels(*p.rules, p.content)
	})
	return p.views.pl, p.views.plErr
}

// ParsePowerLevels parses power levels content under the room version's
// rules; see [PDU.PowerLevels].
func ParsePowerLevels(rules roomversion.Rules, content []byte) (*PowerLevels, error) {
	c := gjson.ParseBytes(content)
	if !c.IsObject() {
		return nil, contentErr("content", "not an object")
	}
	pl := DefaultPowerLevels()
	var err error
	level := func(name string, dst *int64, explicit *bool) {
		if err != nil {
			return
		}
		if v := c.Get(name); v.Exists() {
			*dst, err = parseLevel(rules, v, name)
			*explicit = true
		}
	}
	x := &pl.Explicit
	level("ban", &pl.Ban, &x.Ban)
	level("kick", &pl.Kick, &x.Kick)
	level("redact", &pl.Redact, &x.Redact)
	level("invite", &pl.Invite, &x.Invite)
	level("events_default", &pl.EventsDefault, &x.EventsDefault)
	level("state_default", &pl.StateDefault, &x.StateDefault)
	level("users_default", &pl.UsersDefault, &x.UsersDefault)
	if err != nil {
		return nil, err
	}
	for _, m := range []struct {
		name string
		dst  map[string]int64
		user bool
	}{{"users", pl.Users, true}, {"events", pl.Events, false}, {"notifications", pl.Notifications, false}} {
		v := c.Get(m.name)
		if !v.Exists() {
			continue
		}
		if !v.IsObject() {
			return nil, contentErr(m.name, "not an object")
		}
		v.ForEach(func(k, lv gjson.Result) bool {
			if m.user {
				if _, e := id.ParseUserID(k.Str); e != nil {
					err = contentErr("users", "key %q is not a user ID", k.Str)
					return false
				}
			}
			var n int64
			if n, err = parseLevel(rules, lv, m.name+"."+k.Str); err != nil {
				return false
			}
			m.dst[k.Str] = n
			if m.name == "notifications" && k.Str == "room" {
				x.NotificationsRoom = true
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return pl, nil
}

func parseLevel(rules roomversion.Rules, v gjson.Result, name string) (int64, error) {
	switch v.Type {
	case gjson.Number:
		isInt := !strings.ContainsAny(v.Raw, ".eE")
		if !isInt {
			if rules.IntegerPowerLevels || rules.StrictCanonicalJSON {
				return 0, contentErr(name, "%s is not an integer", v.Raw)
			}
			f := math.Trunc(v.Num)
			if math.IsNaN(f) || f > 1<<53 || f < -(1<<53) {
				return 0, contentErr(name, "%s is out of range", v.Raw)
			}
			return int64(f), nil
		}
		n, err := strconv.ParseInt(v.Raw, 10, 64)
		if err != nil {
			return 0, contentErr(name, "%s is out of range", v.Raw)
		}
		return n, nil
	case gjson.String:
		if rules.IntegerPowerLevels {
			return 0, contentErr(name, "%q is a string; room version %s needs integers", v.Str, rules.ID)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v.Str), 10, 64)
		if err != nil {
			return 0, contentErr(name, "%q is not an integer", v.Str)
		}
		return n, nil
	}
	return 0, contentErr(name, "not an integer")
}

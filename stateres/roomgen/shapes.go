package roomgen

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// Creator is the user who creates generated rooms.
const Creator = "@alice:" + Server

// User returns the ID of generated user i.
func User(i int) string { return fmt.Sprintf("@u%d:%s", i, Server) }

// PowerLevels returns power levels content giving users their levels (the
// creator 100, left out from room version 12 where creators are implicit)
// plus extra event levels.
func PowerLevels(rules roomversion.Rules, users map[string]int64, events map[string]int64) map[string]any {
	u := map[string]any{}
	if !rules.PrivilegedCreators {
		u[Creator] = 100
	}
	for k, v := range users {
		u[k] = v
	}
	ev := map[string]any{}
	for k, v := range events {
		ev[k] = v
	}
	return map[string]any{
		"users": u, "users_default": 0, "events": ev, "events_default": 0,
		"state_default": 50, "ban": 50, "kick": 50, "redact": 50, "invite": 0,
	}
}

// Forked builds a room with mods users (level 50) that forks into two
// branches which then receive n state events in turn; every tenth is a
// power levels change by the creator, the others are custom state events by
// the mods, where both branches write the same keys. It returns the room and
// the two branches' states.
func Forked(rules roomversion.Rules, n, mods int) (*Room, []map[eventauth.StateKey]string, error) {
	r, b, err := New(rules, Creator)
	if err != nil {
		return nil, nil, err
	}
	levels := map[string]int64{}
	for i := range mods {
		levels[User(i)] = 50
	}
	if _, err := b.Send("m.room.power_levels", ptr(""), Creator, PowerLevels(rules, levels, nil)); err != nil {
		return nil, nil, err
	}
	if _, err := b.Send("m.room.join_rules", ptr(""), Creator, map[string]any{"join_rule": "public"}); err != nil {
		return nil, nil, err
	}
	for i := range mods {
		if _, err := b.Send("m.room.member", ptr(User(i)), User(i), map[string]any{"membership": "join"}); err != nil {
			return nil, nil, err
		}
	}
	branches := []*Branch{b, b.Fork()}
	for i := range n {
		br := branches[i%2]
		if i%10 == 0 {
			_, err = br.Send("m.room.power_levels", ptr(""), Creator,
				PowerLevels(rules, levels, map[string]int64{"org.example.counter": int64(i / 10 % 100)}))
		} else {
			_, err = br.Send("org.example.state", ptr(fmt.Sprintf("k%d", i/2)), User(i%mods),
				map[string]any{"i": i})
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return r, []map[eventauth.StateKey]string{branches[0].State(), branches[1].State()}, nil
}

// RandomOptions shapes Random.
type RandomOptions struct {
	// Users is the number of users besides the creator (default 5).
	Users int
	// Branches is the number of forks (default 2).
	Branches int
	// Events is the number of events after the fork (default 30).
	Events int
	// PowerOnOneBranch confines power levels changes, bans and kicks to the
	// first branch, all by the creator.
	PowerOnOneBranch bool
	// OncePerKey writes each (type, state_key) at most once per branch
	// after the fork, so that no branch has superseded events of its own.
	OncePerKey bool
	// NoSelfLeave leaves out users leaving by themselves.
	NoSelfLeave bool
	// NoKicks leaves out kicks and bans.
	NoKicks bool
}

// Random builds a random forked room: joins, leaves, kicks, bans, power
// levels and join rules changes and topics, on several branches, each event
// valid against its branch's state. It returns the branches' states.
func Random(rules roomversion.Rules, rng *rand.Rand, o RandomOptions) (*Room, []map[eventauth.StateKey]string, error) {
	if o.Users == 0 {
		o.Users = 5
	}
	if o.Branches == 0 {
		o.Branches = 2
	}
	if o.Events == 0 {
		o.Events = 30
	}
	r, b, err := New(rules, Creator)
	if err != nil {
		return nil, nil, err
	}
	levels := map[string]int64{}
	for i := range o.Users {
		levels[User(i)] = []int64{0, 0, 50, 100}[rng.IntN(4)]
	}
	if _, err := b.Send("m.room.power_levels", ptr(""), Creator, PowerLevels(rules, levels, nil)); err != nil {
		return nil, nil, err
	}
	if _, err := b.Send("m.room.join_rules", ptr(""), Creator, map[string]any{"join_rule": "public"}); err != nil {
		return nil, nil, err
	}
	for i := range o.Users {
		if rng.IntN(4) > 0 {
			if _, err := b.Send("m.room.member", ptr(User(i)), User(i), map[string]any{"membership": "join"}); err != nil {
				return nil, nil, err
			}
		}
	}
	branches := []*Branch{b}
	for range o.Branches - 1 {
		branches = append(branches, b.Fork())
	}
	written := make([]map[eventauth.StateKey]bool, len(branches))
	for i := range written {
		written[i] = map[eventauth.StateKey]bool{}
	}
	for sent, attempts := 0, 0; sent < o.Events && attempts < 100*o.Events; attempts++ {
		bi := rng.IntN(len(branches))
		br := branches[bi]
		power := !o.PowerOnOneBranch || bi == 0
		sender := Creator
		if rng.IntN(3) > 0 {
			sender = User(rng.IntN(o.Users))
		}
		if o.PowerOnOneBranch {
			sender = User(rng.IntN(o.Users))
		}
		target := User(rng.IntN(o.Users))
		k := rng.IntN(10)
		if o.OncePerKey {
			key := eventauth.StateKey{Type: "m.room.topic"}
			switch {
			case k < 2, k < 3, k < 4 && power:
				key = eventauth.StateKey{Type: "m.room.member", StateKey: target}
			case k < 5 && power:
				key = eventauth.StateKey{Type: "m.room.power_levels"}
			case k < 6 && power:
				key = eventauth.StateKey{Type: "m.room.join_rules"}
			}
			if written[bi][key] {
				continue
			}
			written[bi][key] = true
		}
		switch {
		case k < 2:
			_, err = br.Send("m.room.member", ptr(target), target, map[string]any{"membership": "join"})
		case k < 3:
			if o.NoSelfLeave {
				continue
			}
			_, err = br.Send("m.room.member", ptr(target), target, map[string]any{"membership": "leave"})
		case k < 4 && power:
			if o.NoKicks {
				continue
			}
			if o.PowerOnOneBranch {
				sender = Creator
			}
			m := []string{"ban", "leave"}[rng.IntN(2)]
			_, err = br.Send("m.room.member", ptr(target), sender, map[string]any{"membership": m})
		case k < 5 && power:
			if o.PowerOnOneBranch {
				sender = Creator
			}
			lv := map[string]int64{}
			for i := range o.Users {
				lv[User(i)] = []int64{0, 0, 50, 100}[rng.IntN(4)]
			}
			_, err = br.Send("m.room.power_levels", ptr(""), sender, PowerLevels(rules, lv, nil))
		case k < 6 && power:
			if o.PowerOnOneBranch {
				sender = Creator
			}
			_, err = br.Send("m.room.join_rules", ptr(""), sender, map[string]any{"join_rule": []string{"public", "invite"}[rng.IntN(2)]})
		default:
			_, err = br.Send("m.room.topic", ptr(""), sender, map[string]any{"topic": fmt.Sprint(sent)})
		}
		if errors.Is(err, ErrNotAllowed) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		sent++
	}
	sets := make([]map[eventauth.StateKey]string, len(branches))
	for i, br := range branches {
		sets[i] = br.State()
	}
	return r, sets, nil
}

// MembershipFork builds a room of k joined members (besides the creator,
// who is the admin) that forks into two branches. On each branch every
// member's membership changes once, cycling through four kinds so that the
// branches differ for every member: a display name change by the member, a
// leave by the member, a kick or a ban by the creator. Halfway through its
// members each branch changes the power levels once (differently). The
// conflicted state set holds 2k+2 events (both branches' events for every
// member and both power levels changes), half of the member events being
// power events (kicks and bans). It returns the room and the branches'
// states.
func MembershipFork(rules roomversion.Rules, k int) (*Room, []map[eventauth.StateKey]string, error) {
	r, b, err := New(rules, Creator)
	if err != nil {
		return nil, nil, err
	}
	if _, err := b.Send("m.room.power_levels", ptr(""), Creator, PowerLevels(rules, nil, nil)); err != nil {
		return nil, nil, err
	}
	if _, err := b.Send("m.room.join_rules", ptr(""), Creator, map[string]any{"join_rule": "public"}); err != nil {
		return nil, nil, err
	}
	for i := range k {
		if _, err := b.Send("m.room.member", ptr(User(i)), User(i), map[string]any{"membership": "join"}); err != nil {
			return nil, nil, err
		}
	}
	branches := []*Branch{b, b.Fork()}
	for i := range k {
		for bi, br := range branches {
			if i == k/2 {
				if _, err := br.Send("m.room.power_levels", ptr(""), Creator,
					PowerLevels(rules, nil, map[string]int64{"org.example.branch": int64(bi)})); err != nil {
					return nil, nil, err
				}
			}
			u := User(i)
			switch (i + bi) % 4 {
			case 0:
				_, err = br.Send("m.room.member", ptr(u), u, map[string]any{"membership": "join", "displayname": fmt.Sprintf("user %d", i)})
			case 1:
				_, err = br.Send("m.room.member", ptr(u), u, map[string]any{"membership": "leave"})
			case 2:
				_, err = br.Send("m.room.member", ptr(u), Creator, map[string]any{"membership": "leave"})
			case 3:
				_, err = br.Send("m.room.member", ptr(u), Creator, map[string]any{"membership": "ban"})
			}
			if err != nil {
				return nil, nil, err
			}
		}
	}
	return r, []map[eventauth.StateKey]string{branches[0].State(), branches[1].State()}, nil
}

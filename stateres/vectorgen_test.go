package stateres_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

// A scenario builds a room for one room version and states, by label, what
// the resolution must give. The expectations are worked out by hand from
// the spec (see each scenario's description); -update writes them, with the
// generated events, to testdata.
type scenario struct {
	name, description string
	build             func(t *testing.T, rules roomversion.Rules) built
}

type built struct {
	room   *roomgen.Room
	names  map[string]*event.PDU
	sets   []map[eventauth.StateKey]string
	expect map[eventauth.StateKey]string // label, or "" for absent
}

var (
	bob   = roomgen.User(1)
	carol = roomgen.User(2)
	alice = roomgen.Creator
)

func s(v string) *string { return &v }

// helper lets scenarios wrap Send calls: h.must(b.Send(...)).
type helper struct{ t *testing.T }

func (h helper) must(ev *event.PDU, err error) *event.PDU {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}

var plKey = eventauth.StateKey{Type: "m.room.power_levels"}

func member(u string) eventauth.StateKey {
	return eventauth.StateKey{Type: "m.room.member", StateKey: u}
}

var scenarios = []scenario{
	{
		name: "ban_vs_power_levels",
		description: "Bob (50) changes the power levels and the topic on one branch while Alice (100, " +
			"creator) bans him on the other. The ban is a power event of higher sender power, so it " +
			"is applied before Bob's power levels event, which is then rejected (Bob is banned); Bob's " +
			"topic fails the same way in the mainline pass.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			pl0 := h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			h.must(b.Send("m.room.member", s(bob), bob, map[string]any{"membership": "join"}))
			a, bb := b, b.Fork()
			ban := h.must(a.Send("m.room.member", s(bob), alice, map[string]any{"membership": "ban"}))
			plB := h.must(bb.Send("m.room.power_levels", s(""), bob, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, map[string]int64{"m.room.topic": 50})))
			topic := h.must(bb.Send("m.room.topic", s(""), bob, map[string]any{"topic": "bob's"}))
			return built{r, map[string]*event.PDU{"PL0": pl0, "BAN": ban, "PL_BOB": plB, "TOPIC_BOB": topic},
				[]map[eventauth.StateKey]string{a.State(), bb.State()},
				map[eventauth.StateKey]string{plKey: "PL0", member(bob): "BAN", {Type: "m.room.topic"}: ""}}
		},
	},
	{
		name: "topic_by_demoted_user",
		description: "Alice demotes Bob from 50 to 0 on one branch; on the other Bob sets the topic. " +
			"The power levels resolve to the demotion; in the mainline pass Alice's older topic and " +
			"Bob's topic have the same mainline position, Alice's is earlier and passes, Bob's fails " +
			"against the resolved power levels.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			h.must(b.Send("m.room.member", s(bob), bob, map[string]any{"membership": "join"}))
			t0 := h.must(b.Send("m.room.topic", s(""), alice, map[string]any{"topic": "alice's"}))
			a, bb := b, b.Fork()
			pl1 := h.must(a.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 0}, nil)))
			t1 := h.must(bb.Send("m.room.topic", s(""), bob, map[string]any{"topic": "bob's"}))
			return built{r, map[string]*event.PDU{"T0": t0, "PL1": pl1, "T1": t1},
				[]map[eventauth.StateKey]string{a.State(), bb.State()},
				map[eventauth.StateKey]string{plKey: "PL1", {Type: "m.room.topic"}: "T0"}}
		},
	},
	{
		name: "join_rules_race",
		description: "Alice makes the room invite-only on one branch while Carol joins the public room " +
			"on the other. The join rules change is a power event and is applied first; Carol's join " +
			"is then rejected, so Carol has no membership in the resolved state.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, nil, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			a, bb := b, b.Fork()
			jr := h.must(a.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "invite"}))
			cj := h.must(bb.Send("m.room.member", s(carol), carol, map[string]any{"membership": "join"}))
			return built{r, map[string]*event.PDU{"JR_INVITE": jr, "CAROL_JOIN": cj},
				[]map[eventauth.StateKey]string{a.State(), bb.State()},
				map[eventauth.StateKey]string{{Type: "m.room.join_rules"}: "JR_INVITE", member(carol): ""}}
		},
	},
	{
		name: "concurrent_power_levels_both_valid",
		description: "Alice (higher power) and Bob (50) change the power levels concurrently; each " +
			"change is allowed against the other. The reverse topological power ordering puts the " +
			"greater sender power first, so Bob's change is applied last and wins.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			h.must(b.Send("m.room.member", s(bob), bob, map[string]any{"membership": "join"}))
			a, bb := b, b.Fork()
			plA := h.must(a.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, map[string]int64{"m.room.name": 50})))
			plB := h.must(bb.Send("m.room.power_levels", s(""), bob, roomgen.PowerLevels(rules, map[string]int64{bob: 50, carol: 25}, nil)))
			return built{r, map[string]*event.PDU{"PL_ALICE": plA, "PL_BOB": plB},
				[]map[eventauth.StateKey]string{a.State(), bb.State()},
				map[eventauth.StateKey]string{plKey: "PL_BOB"}}
		},
	},
	{
		name: "concurrent_power_levels_later_rejected",
		description: "As concurrent_power_levels_both_valid, but Alice's change sets a level (60) above " +
			"Bob's own, so Bob's later-applied event, which drops that entry, is rejected and Alice's " +
			"power levels stay.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			h.must(b.Send("m.room.member", s(bob), bob, map[string]any{"membership": "join"}))
			a, bb := b, b.Fork()
			plA := h.must(a.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 50}, map[string]int64{"m.room.name": 60})))
			plB := h.must(bb.Send("m.room.power_levels", s(""), bob, roomgen.PowerLevels(rules, map[string]int64{bob: 50, carol: 25}, nil)))
			return built{r, map[string]*event.PDU{"PL_ALICE": plA, "PL_BOB": plB},
				[]map[eventauth.StateKey]string{a.State(), bb.State()},
				map[eventauth.StateKey]string{plKey: "PL_ALICE"}}
		},
	},
	{
		name: "reset_admin_left",
		description: "Alice gives Bob 100 (PL1) and then leaves; one state set still has the older " +
			"PL0. v2 starts the iterative auth checks from the unconflicted state, where Alice has " +
			"left, so both power levels events are rejected and the room loses its power levels " +
			"(Bob is reset to 0). v2.1 starts from an empty state, Alice's membership comes from " +
			"each event's auth events, and PL1 wins.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			pl0 := h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, nil, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			h.must(b.Send("m.room.member", s(bob), bob, map[string]any{"membership": "join"}))
			pl1 := h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 100}, nil)))
			h.must(b.Send("m.room.member", s(alice), alice, map[string]any{"membership": "leave"}))
			s1 := b.State()
			s2 := maps.Clone(s1)
			s2[plKey] = pl0.EventID()
			want := "PL1"
			if rules.StateResolution == roomversion.StateResV2 {
				want = ""
			}
			return built{r, map[string]*event.PDU{"PL0": pl0, "PL1": pl1},
				[]map[eventauth.StateKey]string{s1, s2},
				map[eventauth.StateKey]string{plKey: want}}
		},
	},
	{
		name: "reset_stale_power_levels_subgraph",
		description: "PL0 (Alice) <- PL1 (Alice gives Bob 100) <- PL2 (Bob gives Carol 50); Bob's " +
			"topic cites PL1, so PL1 is in every auth chain and not in the auth difference. One " +
			"state set has the stale PL0, the other PL2. v2 replays only PL0 and PL2: PL2 fails " +
			"against PL0 and the power levels reset to PL0. v2.1 adds PL1, on the path between the " +
			"conflicted PL2 and PL0 (conflicted state subgraph), and PL2 wins.",
		build: func(t *testing.T, rules roomversion.Rules) built {
			h := helper{t}
			r, b, err := roomgen.New(rules, alice)
			if err != nil {
				t.Fatal(err)
			}
			pl0 := h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, nil, nil)))
			h.must(b.Send("m.room.join_rules", s(""), alice, map[string]any{"join_rule": "public"}))
			h.must(b.Send("m.room.member", s(bob), bob, map[string]any{"membership": "join"}))
			pl1 := h.must(b.Send("m.room.power_levels", s(""), alice, roomgen.PowerLevels(rules, map[string]int64{bob: 100}, nil)))
			topic := h.must(b.Send("m.room.topic", s(""), bob, map[string]any{"topic": "bob's"}))
			pl2 := h.must(b.Send("m.room.power_levels", s(""), bob, roomgen.PowerLevels(rules, map[string]int64{bob: 100, carol: 50}, nil)))
			s1 := b.State()
			s2 := maps.Clone(s1)
			s2[plKey] = pl0.EventID()
			want := "PL2"
			if rules.StateResolution == roomversion.StateResV2 {
				want = "PL0"
			}
			return built{r, map[string]*event.PDU{"PL0": pl0, "PL1": pl1, "PL2": pl2, "TOPIC": topic},
				[]map[eventauth.StateKey]string{s1, s2},
				map[eventauth.StateKey]string{plKey: want}}
		},
	},
}

// vectorVersions are the room versions each scenario is written for: the
// newest room version of each state resolution algorithm after v1.
func vectorVersions(t *testing.T) []roomversion.Rules {
	var v2, v21 roomversion.Rules
	for _, r := range roomversion.All() {
		switch r.StateResolution {
		case roomversion.StateResV2:
			v2 = r
		case roomversion.StateResV2_1:
			v21 = r
		}
	}
	if v2.ID == "" || v21.ID == "" {
		t.Fatal("no v2 or v2.1 room version")
	}
	return []roomversion.Rules{v2, v21}
}

func TestGenerateVectors(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata vectors")
	}
	for _, sc := range scenarios {
		for _, rules := range vectorVersions(t) {
			b := sc.build(t, rules)
			v := vector{Name: sc.name, Description: sc.description, Expect: "resolved", RoomVersion: rules.ID,
				Names: map[string]string{}}
			for label, ev := range b.names {
				v.Names[label] = ev.EventID()
			}
			for _, ev := range b.room.All() {
				v.Events = append(v.Events, ev.JSON())
			}
			for _, st := range b.sets {
				v.StateSets = append(v.StateSets, toTriples(st))
			}
			// Expected: the unconflicted entries of the sets plus the
			// scenario's hand-derived conflicted entries.
			want := map[eventauth.StateKey]string{}
			for k, id := range b.sets[0] {
				same := true
				for _, o := range b.sets[1:] {
					if o[k] != id {
						same = false
					}
				}
				if same {
					want[k] = id
				}
			}
			for _, st := range b.sets {
				for k, id := range st {
					if want[k] != id {
						if _, ok := b.expect[k]; !ok {
							t.Fatalf("%s: conflicted key %v has no hand-derived expectation", sc.name, k)
						}
					}
				}
			}
			for k, label := range b.expect {
				if label == "" {
					delete(want, k)
					continue
				}
				ev, ok := b.names[label]
				if !ok {
					t.Fatalf("%s: unknown label %s", sc.name, label)
				}
				want[k] = ev.EventID()
			}
			v.Resolved = toTriples(want)
			out, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", fmt.Sprintf("%s_%s.json", sc.name, rules.StateResolution))
			if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

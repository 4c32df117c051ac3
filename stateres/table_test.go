package stateres

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestIDTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, hint := range []int{0, 10, 5000} {
		tab := newIDTable(hint, 44)
		want := map[string]int32{}
		var order []string
		for i := range 3000 {
			// Short keys repeat often; the empty key and keys that are
			// prefixes of others are included.
			s := fmt.Sprintf("$%04x", rng.IntN(4000))
			s = s[:1+rng.IntN(len(s))]
			if i%500 == 0 {
				s = ""
			}
			e, added := tab.insert(s, int32(i))
			if _, had := want[s]; had == added {
				t.Fatalf("hint %d: insert(%q) added=%v, had=%v", hint, s, added, had)
			}
			if added {
				want[s] = int32(i)
				order = append(order, s)
				if int(e) != len(order)-1 {
					t.Fatalf("entry %d for the %dth key", e, len(order))
				}
			}
			if tab.key(e) != s {
				t.Fatalf("key(%d) = %q, want %q", e, tab.key(e), s)
			}
		}
		if tab.len() != len(want) {
			t.Fatalf("len %d, want %d", tab.len(), len(want))
		}
		for s, v := range want {
			if got, ok := tab.get(s); !ok || got != v {
				t.Fatalf("get(%q) = %d, %v; want %d", s, got, ok, v)
			}
		}
		for _, s := range []string{"$zz", "x", "$1234567"} {
			if _, ok := tab.get(s); ok {
				t.Fatalf("get(%q) found a key never inserted", s)
			}
		}
		for e, s := range order {
			if tab.find(s) != int32(e) {
				t.Fatalf("find(%q) = %d, want %d", s, tab.find(s), e)
			}
		}
	}
}

func TestKeyTable(t *testing.T) {
	k := newKeyTable(0)
	// Pairs whose concatenations collide must stay distinct keys.
	keys := []stateKey{
		{Type: "ab", StateKey: "c"}, {Type: "a", StateKey: "bc"}, {Type: "abc"}, {StateKey: "abc"},
		{}, {Type: "a\x00", StateKey: "b"}, {Type: "a", StateKey: "\x00b"},
		{Type: "\x02ab"}, {Type: string(make([]byte, 300)), StateKey: "x"},
	}
	for round := range 2 {
		for i, key := range keys {
			id, added := k.intern(key)
			if id != int32(i) || added != (round == 0) {
				t.Fatalf("round %d: intern(%q) = %d, %v", round, key, id, added)
			}
			if got := k.find(key.Type, key.StateKey); got != int32(i) {
				t.Fatalf("find(%q) = %d, want %d", key, got, i)
			}
			if k.list[id] != key {
				t.Fatalf("list[%d] = %q, want %q", id, k.list[id], key)
			}
		}
	}
	if k.len() != len(keys) {
		t.Fatalf("len %d, want %d", k.len(), len(keys))
	}
	if got := k.find("ab", ""); got != -1 {
		t.Fatalf("find of an unknown key = %d", got)
	}
	if k.createKey != -1 || k.plKey != -1 || k.joinRulesKey != -1 {
		t.Fatalf("constant keys set before they were added: %d %d %d", k.createKey, k.plKey, k.joinRulesKey)
	}
	k.intern(stateKey{Type: typeMember, StateKey: ""})
	pl, _ := k.intern(stateKey{Type: typePowerLevels})
	k.intern(stateKey{Type: typeCreate, StateKey: "x"})
	create, _ := k.intern(stateKey{Type: typeCreate})
	if k.plKey != pl || k.createKey != create || k.joinRulesKey != -1 {
		t.Fatalf("constant keys %d %d %d, want %d %d -1", k.createKey, k.plKey, k.joinRulesKey, create, pl)
	}
}

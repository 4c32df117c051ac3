package stateres_test

import (
	"context"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/stateres"
	"github.com/gomatrixlib/gomatrixlib/stateres/roomgen"
)

var update = flag.Bool("update", false, "regenerate testdata/*.json vectors")

// vector is one testdata file: events, state sets and the resolved state.
type vector struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Expect      string            `json:"expect"`
	RoomVersion string            `json:"room_version"`
	Names       map[string]string `json:"names"`
	Events      []json.RawMessage `json:"events"`
	StateSets   [][][3]string     `json:"state_sets"`
	Resolved    [][3]string       `json:"resolved"`
}

func toTriples(m map[eventauth.StateKey]string) [][3]string {
	out := make([][3]string, 0, len(m))
	for k, id := range m {
		out = append(out, [3]string{k.Type, k.StateKey, id})
	}
	slices.SortFunc(out, func(a, b [3]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	return out
}

func fromTriples(ts [][3]string) map[eventauth.StateKey]string {
	out := make(map[eventauth.StateKey]string, len(ts))
	for _, t := range ts {
		out[eventauth.StateKey{Type: t[0], StateKey: t[1]}] = t[2]
	}
	return out
}

// mapProvider serves parsed events by ID.
type mapProvider map[string]*event.PDU

func (m mapProvider) Events(_ context.Context, ids []string) ([]*event.PDU, error) {
	out := make([]*event.PDU, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out, nil
}

func loadVector(t *testing.T, path string) (vector, roomversion.Rules, mapProvider) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if v.Expect != "resolved" || len(v.Events) == 0 || len(v.StateSets) == 0 {
		t.Fatalf("%s: incomplete vector", path)
	}
	rules, err := roomversion.Get(v.RoomVersion)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	p := mapProvider{}
	for _, ev := range v.Events {
		pdu, err := event.Parse(rules, ev)
		if err != nil {
			t.Fatalf("%s: event: %v", path, err)
		}
		p[pdu.EventID()] = pdu
	}
	return v, rules, p
}

func TestVectors(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d vectors, want at least 10", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			v, rules, p := loadVector(t, f)
			sets := make([]map[eventauth.StateKey]string, len(v.StateSets))
			for i, s := range v.StateSets {
				sets[i] = fromTriples(s)
			}
			want := fromTriples(v.Resolved)
			for _, order := range [][]int{{0, 1}, {1, 0}} {
				ordered := make([]map[eventauth.StateKey]string, 0, len(sets))
				for _, i := range order {
					if i < len(sets) {
						ordered = append(ordered, sets[i])
					}
				}
				for _, prov := range []stateres.Provider{p, indexedProvider{p}} {
					got, err := stateres.Resolve(context.Background(), rules, ordered, prov)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got, want) {
						t.Errorf("order %v, %T:\n got %v\nwant %v", order, prov, named(v, got), named(v, want))
					}
				}
			}
		})
	}
}

// named replaces event IDs by the vector's labels for readable failures.
func named(v vector, m map[eventauth.StateKey]string) map[string]string {
	back := map[string]string{}
	for name, id := range v.Names {
		back[id] = name
	}
	out := map[string]string{}
	for k, id := range m {
		if n, ok := back[id]; ok {
			id = n
		}
		out[k.Type+"|"+k.StateKey] = id
	}
	return out
}

// indexedProvider adds a brute-force AuthChainIndex to a mapProvider, so
// the index code path is exercised on the same vectors.
type indexedProvider struct{ mapProvider }

func (p indexedProvider) chain(id string) map[string]bool {
	out := map[string]bool{}
	stack := slices.Clone(p.mapProvider[id].AuthEventIDs())
	for len(stack) > 0 {
		a := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !out[a] {
			out[a] = true
			if ev := p.mapProvider[a]; ev != nil {
				stack = append(stack, ev.AuthEventIDs()...)
			}
		}
	}
	return out
}

func (p indexedProvider) AuthChainDifference(_ context.Context, sets [][]string) ([]string, error) {
	return stateres.ChainDifference(sets, p.chain), nil
}

func (p indexedProvider) ConflictedSubgraph(_ context.Context, conflicted []string) ([]string, error) {
	var out []string
	for id := range p.mapProvider {
		ch := p.chain(id)
		below, above := false, false
		for _, c := range conflicted {
			below = below || ch[c]
			above = above || p.chain(c)[id]
		}
		if below && above {
			out = append(out, id)
		}
	}
	return out, nil
}

func (p indexedProvider) InAuthChains(_ context.Context, of, candidates []string) ([]string, error) {
	all := map[string]bool{}
	for _, id := range of {
		maps.Copy(all, p.chain(id))
	}
	var out []string
	for _, c := range candidates {
		if all[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

var _ = roomgen.Creator

package clientapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// Fuzz targets for the key upload check and push rule actions. Each
// checks a property that must hold for any input.

func FuzzCheckKeyUpload(f *testing.F) {
	f.Add([]byte(`{"signed_curve25519:a":{"key":"k"},"curve25519:b":"k"}`), []byte(`{"signed_curve25519:f":{"key":"f","fallback":true}}`))
	f.Add([]byte(`{"nocolon":"k"}`), []byte(`{}`))
	f.Add([]byte(`{"a:b":5}`), []byte(`{"a:1":"x","a:2":"y"}`))
	f.Fuzz(func(t *testing.T, otkJSON, fbJSON []byte) {
		var otk, fb map[string]json.RawMessage
		if json.Unmarshal(otkJSON, &otk) != nil || json.Unmarshal(fbJSON, &fb) != nil {
			return
		}
		if checkKeyUpload(otk, fb) != nil {
			return
		}
		algs := map[string]bool{}
		for name, v := range fb {
			alg, id, ok := strings.Cut(name, ":")
			if !ok || alg == "" || id == "" || algs[alg] || !json.Valid(v) {
				t.Fatalf("accepted fallback keys %s", fbJSON)
			}
			algs[alg] = true
		}
		for name := range otk {
			if alg, id, ok := strings.Cut(name, ":"); !ok || alg == "" || id == "" {
				t.Fatalf("accepted one-time keys %s", otkJSON)
			}
		}
	})
}

func FuzzPushRuleActions(f *testing.F) {
	f.Add([]byte(`["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]`))
	f.Add([]byte(`[5]`))
	f.Add([]byte(`[{"value":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var acts []json.RawMessage
		if json.Unmarshal(b, &acts) != nil || checkActions(acts) != nil {
			return
		}
		for _, a := range acts {
			var s string
			var o map[string]any
			if json.Unmarshal(a, &s) != nil && (json.Unmarshal(a, &o) != nil || o["set_tweak"] == nil) {
				t.Fatalf("accepted action %s", a)
			}
		}
	})
}

func TestDefaultRulesetIsValidJSON(t *testing.T) {
	for _, u := range []string{"@alice:test.local", `@we"ird\:x`} {
		b, err := json.Marshal(defaultRuleset(u))
		if err != nil || !json.Valid(b) {
			t.Fatalf("%s: %v", u, err)
		}
		if !strings.Contains(string(b), `"content.m\\.mentions.user_ids"`) {
			t.Fatalf("mention key not escaped as the spec has it: %s", b)
		}
	}
}

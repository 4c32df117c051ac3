package clientapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
)

// maxKeysPerUpload bounds the one-time and fallback keys of one upload.
const maxKeysPerUpload = 1000

// checkKeyUpload checks every one-time and fallback key of a /keys/upload
// before anything is stored, so that a refused upload stores nothing:
// names are "algorithm:key_id", values strings or objects, at most one
// fallback key per algorithm, at most maxKeysPerUpload keys.
func checkKeyUpload(oneTime, fallback map[string]json.RawMessage) error {
	if len(oneTime)+len(fallback) > maxKeysPerUpload {
		return httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "too many keys in one upload")
	}
	fallbackAlgs := map[string]bool{}
	for _, set := range []struct {
		what string
		keys map[string]json.RawMessage
	}{{"one-time", oneTime}, {"fallback", fallback}} {
		for name, v := range set.keys {
			alg, id, ok := strings.Cut(name, ":")
			if !ok || alg == "" || id == "" || len(name) > 255 {
				return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", set.what+" key IDs are algorithm:id")
			}
			t := strings.TrimSpace(string(v))
			if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, `"`) {
				return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", set.what+" keys are strings or objects")
			}
			if set.what == "fallback" {
				if fallbackAlgs[alg] {
					return httputil.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "at most one fallback key per algorithm")
				}
				fallbackAlgs[alg] = true
			}
		}
	}
	return nil
}

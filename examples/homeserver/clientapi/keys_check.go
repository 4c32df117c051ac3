package clientapi

import (
	"context"
	"encoding/json"
	"errors"
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

// errClaimRaced says a concurrent claim deleted the one-time key first
// (PostgreSQL's default isolation lets two claims select the same row; the
// second's delete then removes nothing).
var errClaimRaced = errors.New("one-time key claimed concurrently")

// claimKeyRetrying runs claimKey until it hands out a key no other claim
// took, so that every one-time key is handed out at most once.
func (a *API) claimKeyRetrying(ctx context.Context, user, dev, alg string) (string, json.RawMessage, error) {
	for {
		keyID, key, err := a.claimKey(ctx, user, dev, alg)
		if !errors.Is(err, errClaimRaced) {
			return keyID, key, err
		}
		if err := ctx.Err(); err != nil {
			return "", nil, err
		}
	}
}

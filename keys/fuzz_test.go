package keys

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// FuzzHandlerQuery feeds arbitrary POST /_matrix/key/v2/query bodies to a
// notary handler: the answer is 200 with a server_keys array or 400.
func FuzzHandlerQuery(f *testing.F) {
	for _, s := range []string{
		`{"server_keys":{"example.org":{"ed25519:abc123":{"minimum_valid_until_ts":1234567890}}}}`,
		`{"server_keys":{}}`,
		`{"server_keys":{"self.example":{}}}`,
		`{"server_keys":{"a.example":{"ed25519:x":{"minimum_valid_until_ts":1e3}}}}`,
		`{"server_keys":[]}`,
		`nope`,
	} {
		f.Add([]byte(s))
	}
	k, err := signing.GenerateKey("ed25519:f")
	if err != nil {
		f.Fatal(err)
	}
	h := &Handler{ServerName: "self.example", Keys: []*signing.Key{k}, Ring: &Ring{}}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, QueryPath, bytes.NewReader(body)))
		switch rec.Code {
		case 200:
			if !gjson.Get(rec.Body.String(), "server_keys").IsArray() {
				t.Fatalf("200 without server_keys array: %s", rec.Body)
			}
		case 400:
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
	})
}

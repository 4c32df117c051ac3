package federation

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// authServer runs an Authenticator with lookup in front of a handler that
// answers 200; do sends one request with the given Authorization headers.
func authServer(t *testing.T, lookup signing.KeyLookup, now time.Time) func(method, uri, body string, authz ...string) (int, string) {
	t.Helper()
	auth := &Authenticator{ServerName: "us.example", Keys: lookup, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)}
	srv := httptest.NewServer(auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{}`)
	})))
	t.Cleanup(srv.Close)
	return func(method, uri, body string, authz ...string) (int, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, srv.URL+uri, rd)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range authz {
			req.Header.Add("Authorization", h)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

func signReq(t *testing.T, k *signing.Key, origin, method, uri, body string) string {
	t.Helper()
	var c []byte
	if body != "" {
		c = []byte(body)
	}
	h, err := SignRequest(origin, "us.example", k.KeyID(), k.PrivateKey(), method, uri, c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAuthenticatorRefusesOldKeys: a request signed with a key the origin
// lists under old_verify_keys gets 401 M_UNAUTHORIZED even while the key's
// expired_ts is in the future; the current key is accepted.
func TestAuthenticatorRefusesOldKeys(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	cur, _ := signing.GenerateKey("ed25519:cur")
	old, _ := signing.GenerateKey("ed25519:old")
	raw, err := keys.Build("remote.example", now.UnixMilli()+3_600_000, []*signing.Key{cur},
		[]keys.OldKey{{KeyID: old.KeyID(), Public: old.Public(), ExpiredTS: now.UnixMilli() + 86_400_000}})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := keys.Parse(raw, "remote.example")
	if err != nil {
		t.Fatal(err)
	}
	ring := &keys.Ring{Now: func() time.Time { return now }}
	if err := ring.Add(sk); err != nil {
		t.Fatal(err)
	}
	do := authServer(t, ring, now)
	uri, body := "/_matrix/federation/v1/send/t1", `{"pdus":[],"edus":[]}`
	if st, b := do("PUT", uri, body, signReq(t, cur, "remote.example", "PUT", uri, body)); st != 200 {
		t.Fatalf("current key: %d %s", st, b)
	}
	if st, b := do("PUT", uri, body, signReq(t, old, "remote.example", "PUT", uri, body)); st != 401 || !strings.Contains(b, "M_UNAUTHORIZED") {
		t.Fatalf("old key with expired_ts in the future: %d %s, want 401 M_UNAUTHORIZED", st, b)
	}
	// VerifyRequest says why.
	h := signReq(t, old, "remote.example", "GET", "/v", "")
	if _, err := VerifyRequest(context.Background(), ring, "us.example", now, "GET", "/v", []string{h}, nil); !errors.Is(err, ErrOldOriginKey) {
		t.Fatalf("VerifyRequest with an old key: %v, want ErrOldOriginKey", err)
	}
	// signing.KeyMap says which keys are old too.
	m := signing.KeyMap{"remote.example": {old.KeyID(): {Public: old.Public(), Old: true}, cur.KeyID(): {Public: cur.Public()}}}
	if _, err := VerifyRequest(context.Background(), m, "us.example", now, "GET", "/v", []string{h}, nil); !errors.Is(err, ErrOldOriginKey) {
		t.Fatalf("VerifyRequest with an old key of a KeyMap: %v, want ErrOldOriginKey", err)
	}
}

// TestAuthenticatorBodyNotCanonicalJSONIsNotJSON: a body the strict
// canonical JSON parser rejects (invalid UTF-8, a lone surrogate, a
// duplicate key) gets 400 M_NOT_JSON before any signature check, even
// with an Authorization header that would not verify.
func TestAuthenticatorBodyNotCanonicalJSONIsNotJSON(t *testing.T) {
	k, _ := signing.GenerateKey("ed25519:1")
	do := authServer(t, keyTable{"remote.example ed25519:1": k.Public()}, time.Now())
	uri := "/_matrix/federation/v1/send/t1"
	authz := signReq(t, k, "remote.example", "PUT", uri, `{"a":"b"}`)
	for _, body := range []string{"{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":1,"a":2}`, "{\"a\xc0\":1}"} {
		if st, b := do("PUT", uri, body, authz); st != 400 || !strings.Contains(b, "M_NOT_JSON") {
			t.Errorf("body %q: %d %s, want 400 M_NOT_JSON", body, st, b)
		}
	}
}

// TestVerifyRequestEveryKnownKeySignatureMustVerify: with one
// Authorization header per key, every header made with a key the lookup
// knows must verify; headers with unknown keys are ignored.
func TestVerifyRequestEveryKnownKeySignatureMustVerify(t *testing.T) {
	k1, _ := signing.GenerateKey("ed25519:1")
	k2, _ := signing.GenerateKey("ed25519:2")
	unknown, _ := signing.GenerateKey("ed25519:3")
	lookup := keyTable{"remote.example ed25519:1": k1.Public(), "remote.example ed25519:2": k2.Public()}
	ctx, now := context.Background(), time.Now()
	uri, body := "/_matrix/federation/v1/send/t1", `{"pdus":[],"edus":[]}`
	good1 := signReq(t, k1, "remote.example", "PUT", uri, body)
	good2 := signReq(t, k2, "remote.example", "PUT", uri, body)
	bad2 := signReq(t, k2, "remote.example", "PUT", uri, `{"pdus":[1],"edus":[]}`)
	for _, tc := range []struct {
		name    string
		headers []string
		want    error
	}{
		{"both good", []string{good1, good2}, nil},
		{"good then bad", []string{good1, bad2}, ErrBadRequestSignature},
		{"bad then good", []string{bad2, good1}, ErrBadRequestSignature},
		{"good and unknown key with a bad signature", []string{signReq(t, unknown, "remote.example", "PUT", uri, "{}"), good1}, nil},
	} {
		origin, err := VerifyRequest(ctx, lookup, "us.example", now, "PUT", uri, tc.headers, []byte(body))
		if tc.want == nil && (err != nil || origin != "remote.example") {
			t.Errorf("%s: %q %v, want accepted", tc.name, origin, err)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %q %v, want %v", tc.name, origin, err, tc.want)
		}
	}
}

package federation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// keyTable is a signing.KeyLookup over fixed keys.
type keyTable map[string]ed25519.PublicKey

func (k keyTable) VerifyKey(_ context.Context, server, keyID string, _ time.Time) (ed25519.PublicKey, error) {
	if p, ok := k[server+" "+keyID]; ok {
		return p, nil
	}
	return nil, signing.ErrUnknownKey
}

func mustKey(t testing.TB, line string) *signing.Key {
	t.Helper()
	k, err := signing.ParseKey(line)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Vectors from FACTS §7: gomatrixserverlib's tests (originally Synapse's)
// and ones derived with the spec appendix key.
func TestSignRequestVectors(t *testing.T) {
	gmsl := mustKey(t, "ed25519 a_Obwu QJvXAPj0D9MUb1exkD8pIWmCvT1xajlsB8jRYz/G5HE")
	spec := mustKey(t, "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	tests := []struct {
		key                                  *signing.Key
		origin, dest, method, uri, body, sig string
	}{
		{gmsl, "localhost:8800", "localhost:44033", "GET", "/_matrix/federation/v1/query/directory?room_alias=%23test%3Alocalhost%3A44033", "",
			"7vt4vP/w8zYB3Zg77nuTPwie3TxEy2OHZQMsSa4nsXZzL4/qw+DguXbyMy3BF77XvSJmBt+Gw+fU6T4HId7fBg"},
		{gmsl, "localhost:8800", "localhost:44033", "PUT", "/_matrix/federation/v1/send/1493385816575/",
			`{"edus":[{"content":{"device_id":"YHRUBZNPFS","keys":{"device_id":"YHRUBZNPFS","device_keys":{},"user_id":"@ANON-22:localhost:8800"},"prev_id":[],"stream_id":30,"user_id":"@ANON-22:localhost:8800"},"edu_type":"m.device_list_update"}],"origin":"localhost:8800","origin_server_ts":1493385822396,"pdu_failures":[],"pdus":[]}`,
			"+hmW6UjEXx7vMt2+MXO/EImSfdEYdBsZEOmpiz3evYktAgGNpGuNMBYXIA969WGubmceREKA/r1phasUFHBpDg"},
		{spec, "domain", "remote.example", "GET", "/_matrix/federation/v1/version", "",
			"wR1E4UZ3G3F2knf0x+RNgxQ2N/hCiZ/ZdOktAey0wSvTWc/nHH8YPJaOvRhipwX46AZPntLZhHd0DFjZ7H7iDQ"},
		{spec, "domain", "remote.example", "PUT", "/_matrix/federation/v1/send/txn1", `{"pdus":[],"edus":[]}`,
			"yD40vwwtEojw7ScGKBXbBqYq17ZSvAYBPggfOobk0FRL90NZIXMC60di3AAJmp3ppf5Lgu5KW2erGjAb2BnXCA"},
	}
	for _, tc := range tests {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		h, err := SignRequest(tc.origin, tc.dest, tc.key.KeyID(), tc.key.PrivateKey(), tc.method, tc.uri, body)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`X-Matrix origin="%s",destination="%s",key="%s",sig="%s"`, tc.origin, tc.dest, tc.key.KeyID(), tc.sig)
		if h != want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.method, tc.uri, h, want)
		}
		keys := keyTable{tc.origin + " " + tc.key.KeyID(): tc.key.Public()}
		origin, err := VerifyRequest(context.Background(), keys, tc.dest, time.Now(), tc.method, tc.uri, []string{h}, body)
		if err != nil || origin != tc.origin {
			t.Errorf("verify: %q %v", origin, err)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	for _, h := range []string{
		"X-Matrix origin=foo , key=\"ed25519:1\",  sig=\"sig\",\t\tdestination=\"bar\"",
		`X-Matrix origin=foo,key="ed25519:1",sig="sig",destination="bar"`,
		"X-Matrix origin=foo,\t,key=\"ed25519:1\",sig=\"sig\",destination=\"bar\"",
		`X-Matrix destination="bar",sig="sig",key="ed25519:1",origin="foo"`,
		`x-matrix Origin = "foo" , KEY=ed25519:1,Sig="sig",destination=bar`,
		`X-Matrix origin="f\oo",key="ed25519:1",sig="sig",destination="bar",extra="ignored"`,
	} {
		a, err := ParseAuthorization(h)
		if err != nil || a != (Authorization{Origin: "foo", Destination: "bar", KeyID: "ed25519:1", Sig: "sig"}) {
			t.Errorf("%q: %+v %v", h, a, err)
		}
	}
	for _, tc := range []struct {
		h    string
		want error
	}{
		{"", ErrNoAuthorization},
		{`Bearer abc`, ErrNoAuthorization},
		{`X-Matrix`, ErrMalformedAuthorization},
		{`X-Matrix origin="foo",key="ed25519:1"`, ErrMalformedAuthorization},
		{`X-Matrix origin="foo,key="ed25519:1",sig="x"`, ErrMalformedAuthorization},
		{`X-Matrix origin="foo" junk,key="ed25519:1",sig="x"`, ErrMalformedAuthorization},
		{`X-Matrix origin="foo",origin="bar",key="ed25519:1",sig="x"`, ErrMalformedAuthorization},
		{`X-Matrix origin="bad server",key="ed25519:1",sig="x"`, ErrMalformedAuthorization},
		{`X-Matrix origin="foo",key="nocolon",sig="x"`, ErrMalformedAuthorization},
		{`X-Matrix origin,key="ed25519:1",sig="x"`, ErrMalformedAuthorization},
		{"X-Matrix origin=\"" + strings.Repeat("a", MaxAuthorizationBytes) + "\"", ErrMalformedAuthorization},
	} {
		if _, err := ParseAuthorization(tc.h); !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.h, err, tc.want)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(`X-Matrix origin="foo",destination="bar",key="ed25519:1",sig="c2ln"`)
	f.Add("X-Matrix origin=foo , key=\"ed25519:1\",  sig=\"sig\",\t\tdestination=\"bar\"")
	f.Add(`X-Matrix origin="a\"b",key=ed25519:1,sig=x`)
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			return
		}
		if a.Origin == "" || a.KeyID == "" || a.Sig == "" {
			t.Fatalf("accepted incomplete %q: %+v", h, a)
		}
	})
}

// TestAuthenticator runs the middleware against good and bad requests.
func TestAuthenticator(t *testing.T) {
	remote := mustKey(t, "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	other, _ := signing.GenerateKey("ed25519:2")
	keys := keyTable{"remote.example ed25519:1": remote.Public()}
	reached := 0
	auth := &Authenticator{ServerName: "us.example", Keys: keys, MaxBodyBytes: 1024}
	srv := httptest.NewServer(auth.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		origin, _ := OriginFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, `{"origin":%q,"body":%q}`, origin, body)
	})))
	defer srv.Close()
	do := func(method, uri, body, authz string) (int, string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, srv.URL+uri, rd)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sign := func(k *signing.Key, origin, dest, method, uri, body string) string {
		var c []byte
		if body != "" {
			c = []byte(body)
		}
		h, err := SignRequest(origin, dest, k.KeyID(), k.PrivateKey(), method, uri, c)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	uri := "/_matrix/federation/v1/send/t1?x=1"
	body := `{"pdus":[],"edus":[]}`
	good := sign(remote, "remote.example", "us.example", "PUT", uri, body)
	if st, b := do("PUT", uri, body, good); st != 200 || !strings.Contains(b, `"origin":"remote.example"`) {
		t.Fatalf("good request: %d %s", st, b)
	}
	cases := []struct {
		name, method, uri, body, authz string
		status                         int
		errcode                        string
	}{
		{"missing", "PUT", uri, body, "", 401, "M_UNAUTHORIZED"},
		{"malformed", "PUT", uri, body, `X-Matrix origin=`, 401, "M_UNAUTHORIZED"},
		{"other scheme", "PUT", uri, body, `Bearer x`, 401, "M_UNAUTHORIZED"},
		{"tampered body", "PUT", uri, `{"pdus":[1],"edus":[]}`, good, 401, "M_UNAUTHORIZED"},
		{"other uri", "PUT", "/_matrix/federation/v1/send/t2?x=1", body, good, 401, "M_UNAUTHORIZED"},
		{"other method", "POST", uri, body, good, 401, "M_UNAUTHORIZED"},
		{"replayed to another destination", "PUT", uri, body, sign(remote, "remote.example", "elsewhere.example", "PUT", uri, body), 401, "M_UNAUTHORIZED"},
		{"key the origin never had", "PUT", uri, body, sign(other, "remote.example", "us.example", "PUT", uri, body), 401, "M_UNAUTHORIZED"},
		{"origin not matching key", "PUT", uri, body, sign(remote, "evil.example", "us.example", "PUT", uri, body), 401, "M_UNAUTHORIZED"},
		{"oversized body", "PUT", uri, `{"a":"` + strings.Repeat("x", 2000) + `"}`, good, 413, "M_TOO_LARGE"},
		{"not json", "PUT", uri, `{nope`, good, 400, "M_NOT_JSON"},
	}
	for _, tc := range cases {
		st, b := do(tc.method, tc.uri, tc.body, tc.authz)
		if st != tc.status || !strings.Contains(b, tc.errcode) {
			t.Errorf("%s: %d %s", tc.name, st, b)
		}
	}
	if reached != 1 {
		t.Fatalf("handler reached %d times, want only by the good request", reached)
	}
	// Without a destination parameter the request is accepted as ours.
	noDest := strings.Replace(sign(remote, "remote.example", "us.example", "GET", "/v", ""), `destination="us.example",`, "", 1)
	if st, _ := do("GET", "/v", "", noDest); st != 200 {
		t.Fatalf("no destination: %d", st)
	}
}

// rewrite sends matrix-federation://name/... to a test server.
type rewrite struct {
	target *url.URL
	base   http.RoundTripper
}

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.target.Scheme, r.target.Host
	return r.base.RoundTrip(req)
}

func TestClient(t *testing.T) {
	us := mustKey(t, "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	auth := &Authenticator{ServerName: "remote.example", Keys: keyTable{"us.example ed25519:1": us.Public()}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_matrix/federation/v1/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"server":{"name":"test","version":"1.0"}}`)
	})
	mux.HandleFunc("PUT /_matrix/federation/v1/send/{txn}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"pdus":{"$a":{}}}`)
	})
	mux.HandleFunc("GET /_matrix/federation/v1/query/profile", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"errcode":"M_NOT_FOUND","error":"no such user"}`)
	})
	mux.HandleFunc("GET /_matrix/federation/v1/publicRooms", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"chunk":[],"pad":"`+strings.Repeat("x", 4096)+`"}`)
	})
	srv := httptest.NewTLSServer(auth.Wrap(mux))
	defer srv.Close()
	target, _ := url.Parse(srv.URL)
	c := &Client{ServerName: "us.example", Key: us, MaxResponseBytes: 1024,
		HTTPClient: &http.Client{Transport: rewrite{target, srv.Client().Transport}}}
	ctx := context.Background()
	v, err := c.Version(ctx, "remote.example")
	if err != nil || v.Server.Name != "test" {
		t.Fatalf("version: %+v %v", v, err)
	}
	res, err := c.SendTransaction(ctx, "remote.example", "t1", Transaction{Origin: "us.example", OriginServerTS: 1})
	if err != nil || len(res) != 1 {
		t.Fatalf("send: %v %v", res, err)
	}
	_, err = c.QueryProfile(ctx, "remote.example", "@x:remote.example", "")
	var me *Error
	if !errors.As(err, &me) || me.Status != 404 || me.Errcode != "M_NOT_FOUND" {
		t.Fatalf("profile: %v", err)
	}
	if _, err := c.PublicRooms(ctx, "remote.example", 0, ""); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("large response: %v", err)
	}
	// A client signing for the wrong destination is refused by the server.
	if _, err := c.Version(ctx, "someone-else.example"); !errors.As(err, &me) || me.Status != 401 {
		t.Fatalf("wrong destination: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	b := &Backoff{Min: time.Second, Max: 4 * time.Second, Now: func() time.Time { return now }}
	fail := errors.New("connection refused")
	calls := 0
	f := func() error { calls++; return fail }
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if err := b.Retry("d", f); !errors.Is(err, fail) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if err := b.Retry("d", f); !errors.Is(err, ErrBackingOff) {
			t.Fatalf("attempt %d during backoff: %v", i, err)
		}
		now = now.Add(want)
	}
	if calls != 4 {
		t.Fatalf("%d calls, want 4", calls)
	}
	// Other destinations are not affected; success resets.
	if ok, _ := b.Ready("other"); !ok {
		t.Fatal("other destination backed off")
	}
	if err := b.Retry("d", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	b.Record("d", &Error{Status: 403, Errcode: "M_FORBIDDEN"})
	if ok, _ := b.Ready("d"); !ok {
		t.Fatal("a 403 should not back off")
	}
}

func BenchmarkSignAndVerifyRequest(b *testing.B) {
	k := mustKey(b, "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	keys := keyTable{"origin.example ed25519:1": k.Public()}
	body := []byte(`{"origin":"origin.example","origin_server_ts":1700000000000,"pdus":[],"edus":[{"edu_type":"m.typing","content":{"room_id":"!r:origin.example","user_id":"@a:origin.example","typing":true}}]}`)
	uri := "/_matrix/federation/v1/send/1700000000000"
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h, err := SignRequest("origin.example", "dest.example", "ed25519:1", k.PrivateKey(), "PUT", uri, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := VerifyRequest(context.Background(), keys, "dest.example", now, "PUT", uri, []string{h}, body); err != nil {
			b.Fatal(err)
		}
	}
}

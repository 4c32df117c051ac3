package keys

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/internal/dnstest"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// routes is an in-memory RoundTripper: the URL host (a server name) picks
// the handler.
type routes struct {
	mu  sync.Mutex
	m   map[string]http.Handler
	log []*http.Request
}

func (rt *routes) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	h := rt.m[req.URL.Host]
	rt.log = append(rt.log, req)
	rt.mu.Unlock()
	if h == nil {
		return nil, errors.New("no route to " + req.URL.Host)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

func (rt *routes) client() *http.Client { return &http.Client{Transport: rt} }

func fixed(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

func TestFetcherDirect(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:1")
	own := &Handler{ServerName: "a.example", Keys: []*signing.Key{k}, Now: c.Now}
	expired, _ := Build("old.example", c.Now().UnixMilli()-1, []*signing.Key{k}, nil)
	other, _ := Build("other.example", c.Now().UnixMilli()+1e6, []*signing.Key{k}, nil)
	rt := &routes{m: map[string]http.Handler{
		"a.example":       own,
		"old.example":     fixed(200, string(expired)),
		"liar.example":    fixed(200, string(other)),
		"missing.example": fixed(404, `{"errcode":"M_UNRECOGNIZED"}`),
		"huge.example":    fixed(200, `{"server_name":"huge.example","x":"`+strings.Repeat("x", MaxResponseBytes)+`"}`),
		"junk.example":    fixed(200, `<html>`),
	}}
	f := &Fetcher{Client: rt.client(), Now: c.Now}
	ctx := context.Background()
	sks, err := f.FetchKeys(ctx, "a.example", nil, time.Time{})
	if err != nil || len(sks) != 1 || !sks[0].VerifyKeys["ed25519:1"].Equal(k.Public()) {
		t.Fatalf("direct fetch: %v", err)
	}
	if u := rt.log[0].URL.String(); u != "https://a.example/_matrix/key/v2/server" || rt.log[0].Method != http.MethodGet {
		t.Errorf("request %s %s", rt.log[0].Method, u)
	}
	for server, want := range map[string]error{
		"old.example": ErrExpired, "liar.example": ErrWrongServer, "missing.example": ErrFetch,
		"huge.example": ErrTooLarge, "junk.example": ErrMalformed, "nowhere.example": ErrFetch,
	} {
		if sks, err := f.FetchKeys(ctx, server, nil, time.Time{}); !errors.Is(err, want) || sks != nil {
			t.Errorf("%s: %v, want %v", server, err, want)
		}
	}
}

// notaryFixture: a notary (a Handler with a Ring fetching directly) for
// several origin servers, reached through an in-memory client.
type notaryFixture struct {
	c       *clock
	rt      *routes
	origins map[string]*signing.Key
	nk      *signing.Key
	notary  *Notary
}

func newNotaryFixture(t *testing.T, origins ...string) *notaryFixture {
	f := &notaryFixture{c: newClock(), rt: &routes{m: map[string]http.Handler{}}, origins: map[string]*signing.Key{}}
	for _, o := range origins {
		k := genKey(t, "ed25519:o")
		f.origins[o] = k
		f.rt.m[o] = &Handler{ServerName: o, Keys: []*signing.Key{k}, Now: f.c.Now}
	}
	f.nk = genKey(t, "ed25519:n")
	ring := &Ring{Now: f.c.Now, Sources: []Source{&Fetcher{Client: f.rt.client(), Now: f.c.Now}}}
	f.rt.m["notary.example"] = &Handler{ServerName: "notary.example", Keys: []*signing.Key{f.nk}, Ring: ring, Now: f.c.Now}
	f.notary = &Notary{ServerName: "notary.example", Keys: map[string]ed25519.PublicKey{"ed25519:n": f.nk.Public()}, Client: f.rt.client()}
	return f
}

func TestNotaryQuery(t *testing.T) {
	f := newNotaryFixture(t, "a.example", "b.example", "c.example", "d.example", "e.example")
	f.notary.BatchSize = 2
	min := f.c.Now().Add(time.Hour)
	var reqs []KeyRequest
	for _, o := range []string{"a.example", "b.example", "c.example", "d.example", "e.example"} {
		reqs = append(reqs, KeyRequest{ServerName: o, KeyIDs: []string{"ed25519:o"}, MinimumValidUntil: min})
	}
	sks, err := f.notary.Query(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(sks) != 5 {
		t.Fatalf("%d objects, want 5", len(sks))
	}
	for _, sk := range sks {
		if !sk.VerifyKeys["ed25519:o"].Equal(f.origins[sk.ServerName].Public()) {
			t.Errorf("%s: wrong key", sk.ServerName)
		}
		if err := VerifyNotary(sk, "notary.example", f.notary.Keys); err != nil {
			t.Errorf("%s: %v", sk.ServerName, err)
		}
	}
	// Batches of 2: three POSTs to the notary, each carrying
	// minimum_valid_until_ts.
	posts := 0
	for _, r := range f.rt.log {
		if r.URL.Host != "notary.example" {
			continue
		}
		posts++
		if r.Method != http.MethodPost || r.URL.Path != QueryPath {
			t.Errorf("notary request %s %s", r.Method, r.URL.Path)
		}
	}
	if posts != 3 {
		t.Errorf("%d notary POSTs, want 3", posts)
	}
}

func TestNotaryQueryBody(t *testing.T) {
	var body []byte
	rt := &routes{m: map[string]http.Handler{"notary.example": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		io.WriteString(w, `{"server_keys":[]}`)
	})}}
	n := &Notary{ServerName: "notary.example", Keys: map[string]ed25519.PublicKey{"ed25519:n": make([]byte, 32)}, Client: rt.client()}
	_, err := n.FetchKeys(context.Background(), "a.example", []string{"ed25519:x"}, time.UnixMilli(1234567890))
	if !errors.Is(err, ErrFetch) {
		t.Errorf("empty answer: %v", err)
	}
	if got := gjson.GetBytes(body, `server_keys.a\.example.ed25519:x.minimum_valid_until_ts`).Int(); got != 1234567890 {
		t.Errorf("request body %s", body)
	}
}

func TestNotaryRejects(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	ok, nk, untrusted := genKey(t, "ed25519:o"), genKey(t, "ed25519:n"), genKey(t, "ed25519:n")
	good, _ := Build("a.example", now+1e6, []*signing.Key{ok}, nil)
	sign := func(raw []byte, k *signing.Key) string {
		out, err := signing.SignJSON("notary.example", k.KeyID(), k.PrivateKey(), raw)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	tampered := strings.Replace(sign(good, nk), `"valid_until_ts":`, `"valid_until_ts":1`, 1)
	other, _ := Build("b.example", now+1e6, []*signing.Key{ok}, nil)
	tests := []struct {
		name string
		resp string
		want error
	}{
		{"no notary signature", `{"server_keys":[` + string(good) + `]}`, ErrNotarySignature},
		{"untrusted notary key", `{"server_keys":[` + sign(good, untrusted) + `]}`, ErrNotarySignature},
		{"tampered after signing", `{"server_keys":[` + tampered + `]}`, ErrSelfSignature},
		{"unrequested server", `{"server_keys":[` + sign(other, nk) + `]}`, ErrWrongServer},
		{"not JSON", `nope`, ErrMalformed},
		{"server_keys not array", `{"server_keys":{}}`, ErrMalformed},
		{"element not object", `{"server_keys":[1]}`, ErrMalformed},
		{"too many objects", `{"server_keys":[` + strings.Repeat(`{},`, MaxNotaryObjects) + `{}]}`, ErrTooLarge},
	}
	for _, tc := range tests {
		rt := &routes{m: map[string]http.Handler{"notary.example": fixed(200, tc.resp)}}
		n := &Notary{ServerName: "notary.example", Keys: map[string]ed25519.PublicKey{"ed25519:n": nk.Public()}, Client: rt.client()}
		sks, err := n.FetchKeys(context.Background(), "a.example", nil, time.Time{})
		if !errors.Is(err, tc.want) || len(sks) != 0 {
			t.Errorf("%s: %d objects, %v; want %v", tc.name, len(sks), err, tc.want)
		}
	}
	// A good object next to a bad one: the good one is returned.
	rt := &routes{m: map[string]http.Handler{"notary.example": fixed(200, `{"server_keys":[`+string(good)+`,`+sign(good, nk)+`]}`)}}
	n := &Notary{ServerName: "notary.example", Keys: map[string]ed25519.PublicKey{"ed25519:n": nk.Public()}, Client: rt.client()}
	sks, err := n.FetchKeys(context.Background(), "a.example", nil, time.Time{})
	if len(sks) != 1 || !errors.Is(err, ErrNotarySignature) {
		t.Errorf("mixed answer: %d objects, %v", len(sks), err)
	}
	if _, err := (&Notary{ServerName: "x"}).Query(context.Background(), nil); !errors.Is(err, ErrNotarySignature) {
		t.Errorf("notary without keys: %v", err)
	}
}

func TestHandler(t *testing.T) {
	f := newNotaryFixture(t, "a.example")
	srv := f.rt.m["notary.example"].(*Handler)
	srv.OldKeys = []OldKey{{KeyID: "ed25519:gone", Public: genKey(t, "ed25519:gone").Public(), ExpiredTS: 5}}
	do := func(method, path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		srv.ServeHTTP(rec, httptest.NewRequest(method, "https://notary.example"+path, rd))
		return rec
	}
	// Own keys.
	rec := do("GET", ServerPath, "")
	sk, err := Parse(rec.Body.Bytes(), "notary.example")
	if rec.Code != 200 || err != nil {
		t.Fatalf("own keys: %d %v", rec.Code, err)
	}
	if rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("content type %q", rec.Header().Get("Content-Type"))
	}
	if sk.ValidUntilTS != f.c.Now().Add(DefaultValidFor).UnixMilli() || sk.OldVerifyKeys["ed25519:gone"].ExpiredTS != 5 {
		t.Errorf("own keys fields: %+v", sk)
	}
	if rec := do("GET", ServerPath+"/ed25519:n", ""); rec.Code != 200 {
		t.Errorf("deprecated key ID path: %d", rec.Code)
	}
	// The cached response is rebuilt after half its validity.
	first := rec.Body.String()
	f.c.advance(DefaultValidFor/2 + time.Second)
	if again := do("GET", ServerPath, "").Body.String(); again == first {
		t.Error("own response not rebuilt after half its validity")
	}

	// Notary GET and POST.
	checkNotary := func(rec *httptest.ResponseRecorder, servers ...string) {
		t.Helper()
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		objs, err := splitServerKeys(rec.Body.Bytes())
		if err != nil || len(objs) != len(servers) {
			t.Fatalf("%d objects, %v; want %d", len(objs), err, len(servers))
		}
		for i, o := range objs {
			sk, err := Parse(o, servers[i])
			if err != nil {
				t.Fatalf("object %d: %v", i, err)
			}
			if err := VerifyNotary(sk, "notary.example", f.notary.Keys); err != nil {
				t.Errorf("object %d: %v", i, err)
			}
		}
	}
	checkNotary(do("GET", QueryPath+"/a.example", ""), "a.example")
	checkNotary(do("GET", QueryPath+"/a.example?minimum_valid_until_ts="+strconv.FormatInt(f.c.Now().UnixMilli(), 10), ""), "a.example")
	checkNotary(do("POST", QueryPath, `{"server_keys":{"a.example":{"ed25519:o":{"minimum_valid_until_ts":1}},"notary.example":{}}}`), "a.example", "notary.example")
	checkNotary(do("POST", QueryPath, `{"server_keys":{}}`))
	checkNotary(do("POST", QueryPath, `{"server_keys":{"offline.example":{}}}`)) // unreachable: omitted

	// Errors.
	for _, tc := range []struct {
		method, path, body string
		code               int
		errcode            string
	}{
		{"GET", "/_matrix/key/v2/nope", "", 404, "M_UNRECOGNIZED"},
		{"POST", ServerPath, "{}", 405, "M_UNRECOGNIZED"},
		{"GET", QueryPath, "", 405, "M_UNRECOGNIZED"},
		{"PUT", QueryPath + "/a.example", "", 405, "M_UNRECOGNIZED"},
		{"POST", QueryPath, "not json", 400, "M_BAD_JSON"},
		{"POST", QueryPath, `{"server_keys":[]}`, 400, "M_BAD_JSON"},
		{"POST", QueryPath, `{"server_keys":{"a.example":{"ed25519:o":{"minimum_valid_until_ts":1.5}}}}`, 400, "M_BAD_JSON"},
		{"POST", QueryPath, `{"server_keys":{"bad name":{}}}`, 400, "M_BAD_JSON"},
		{"POST", QueryPath, `{"server_keys":{` + manyServers(DefaultMaxQueryServers+1) + `}}`, 400, "M_BAD_JSON"},
		{"POST", QueryPath, `{"server_keys":{"a.example":{}},"pad":"` + strings.Repeat("x", MaxQueryBodyBytes) + `"}`, 400, "M_BAD_JSON"},
		{"GET", QueryPath + "/a.example?minimum_valid_until_ts=soon", "", 400, "M_INVALID_PARAM"},
		{"GET", QueryPath + "/bad_name", "", 400, "M_INVALID_PARAM"},
	} {
		rec := do(tc.method, tc.path, tc.body)
		if rec.Code != tc.code || gjson.Get(rec.Body.String(), "errcode").Str != tc.errcode {
			t.Errorf("%s %.60s: %d %s; want %d %s", tc.method, tc.path, rec.Code, rec.Body, tc.code, tc.errcode)
		}
	}
}

func manyServers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"s` + strconv.Itoa(i) + `.example":{}`)
	}
	return b.String()
}

// TestFetchOverTLS runs the direct fetch through serverdiscovery's
// Transport: DNS from an in-process server, TLS with certificate checks,
// the Handler behind httptest.
func TestFetchOverTLS(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:1")
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS() // certificate valid for example.com and 127.0.0.1
	defer srv.Close()
	port := netip.MustParseAddrPort(srv.Listener.Addr().String()).Port()
	name := "example.com:" + strconv.Itoa(int(port))
	srv.Config.Handler = &Handler{ServerName: name, Keys: []*signing.Key{k}, Now: c.Now}
	dns := dnstest.New(t)
	dns.AddA("example.com", netip.MustParseAddr("127.0.0.1"))
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr := &serverdiscovery.Transport{
		Resolver:  &serverdiscovery.Resolver{DNSServer: dns.Addr, Guard: serverdiscovery.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		TLSConfig: &tls.Config{RootCAs: pool},
	}
	defer tr.CloseIdleConnections()
	ring := &Ring{Now: c.Now, Sources: []Source{&Fetcher{Client: &http.Client{Transport: tr}, Now: c.Now}}}
	pub, err := ring.VerifyKey(context.Background(), name, "ed25519:1", c.Now())
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("VerifyKey over TLS: %v", err)
	}
	// Without the allow-list the guard refuses the loopback address.
	tr2 := &serverdiscovery.Transport{Resolver: &serverdiscovery.Resolver{DNSServer: dns.Addr}, TLSConfig: &tls.Config{RootCAs: pool}}
	_, err = (&Fetcher{Client: &http.Client{Transport: tr2}}).FetchKeys(context.Background(), name, nil, time.Time{})
	if !errors.Is(err, serverdiscovery.ErrForbiddenAddress) || !errors.Is(err, ErrFetch) {
		t.Errorf("guarded fetch: %v", err)
	}
}

func TestBuild(t *testing.T) {
	k1, k2 := genKey(t, "ed25519:a"), genKey(t, "ed25519:b")
	raw, err := Build("example.org", 99, []*signing.Key{k1, k2}, []OldKey{{KeyID: "ed25519:z", Public: k1.Public(), ExpiredTS: 7}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*signing.Key{k1, k2} {
		if err := signing.VerifyJSON("example.org", k.KeyID(), k.Public(), raw); err != nil {
			t.Errorf("not signed by %s: %v", k.KeyID(), err)
		}
	}
	sk, err := Parse(raw, "example.org")
	if err != nil || sk.ValidUntilTS != 99 || len(sk.VerifyKeys) != 2 || sk.OldVerifyKeys["ed25519:z"].ExpiredTS != 7 {
		t.Fatalf("round trip: %+v %v", sk, err)
	}
	for _, tc := range []struct {
		name string
		cur  []*signing.Key
		old  []OldKey
		srv  string
	}{
		{"no keys", nil, nil, "example.org"},
		{"nil key", []*signing.Key{nil}, nil, "example.org"},
		{"repeated key ID", []*signing.Key{k1, k1}, nil, "example.org"},
		{"old repeats current", []*signing.Key{k1}, []OldKey{{KeyID: "ed25519:a", Public: k1.Public()}}, "example.org"},
		{"old key short", []*signing.Key{k1}, []OldKey{{KeyID: "ed25519:x", Public: k1.Public()[:5]}}, "example.org"},
		{"bad server name", []*signing.Key{k1}, nil, "bad name"},
	} {
		if _, err := Build(tc.srv, 1, tc.cur, tc.old); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestHandlerLooksUpConcurrently: the origins of one query are fetched in
// parallel (each fetch here waits until both have started).
func TestHandlerLooksUpConcurrently(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:o")
	var started sync.WaitGroup
	started.Add(2)
	src := &fakeSource{fn: func(server string, _ []string, _ time.Time) ([]*ServerKeys, error) {
		started.Done()
		started.Wait()
		return []*ServerKeys{serverKeys(t, server, c.Now().UnixMilli()+1e6, []*signing.Key{k})}, nil
	}}
	nk := genKey(t, "ed25519:n")
	h := &Handler{ServerName: "notary.example", Keys: []*signing.Key{nk}, Now: c.Now, Ring: &Ring{Now: c.Now, Sources: []Source{src}}}
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", QueryPath, strings.NewReader(`{"server_keys":{"a.example":{},"b.example":{}}}`)))
		done <- rec
	}()
	select {
	case rec := <-done:
		objs, err := splitServerKeys(rec.Body.Bytes())
		if err != nil || len(objs) != 2 {
			t.Fatalf("%d objects, %v", len(objs), err)
		}
		for i, want := range []string{"a.example", "b.example"} {
			if _, err := Parse(objs[i], want); err != nil {
				t.Errorf("object %d: %v", i, err)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lookups ran one after the other (deadlock on the two-party barrier)")
	}
}

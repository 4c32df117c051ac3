package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestSigningCommands(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := runCmd(t, `{ "b": "2", "a": "\u65E5" }`, "canonicalize"); code != 0 || out != "{\"a\":\"日\",\"b\":\"2\"}\n" {
		t.Fatalf("canonicalize: %d %q", code, out)
	}
	if code, _ := runCmd(t, `{"a":1.5}`, "canonicalize", "-strict"); code != 1 {
		t.Fatalf("strict float accepted: %d", code)
	}
	code, signed := runCmd(t, `{"one":1,"two":"Two"}`, "sign-json", "-key", keyFile, "-server", "domain")
	if code != 0 || !strings.Contains(signed, "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw") {
		t.Fatalf("sign-json: %d %s", code, signed)
	}
	pub := "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"
	if code, out := runCmd(t, signed, "verify-json", "-server", "domain", "-key-id", "ed25519:1", "-public-key", pub); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify-json: %d %s", code, out)
	}
	if code, _ := runCmd(t, strings.Replace(signed, `"one":1`, `"one":2`, 1), "verify-json", "-server", "domain", "-key-id", "ed25519:1", "-public-key", pub); code != 1 {
		t.Fatalf("tampered JSON verified: %d", code)
	}
	ev := `{"room_id":"!x:domain","sender":"@a:domain","origin_server_ts":1000000,"type":"X","content":{},"prev_events":[],"auth_events":[],"depth":3}`
	code, sev := runCmd(t, ev, "sign-event", "-key", keyFile, "-server", "domain", "-room-version", "10")
	if code != 0 {
		t.Fatalf("sign-event: %s", sev)
	}
	sev = sev[:strings.Index(sev, "\n")+1]
	if code, out := runCmd(t, sev, "verify-event", "-server", "domain", "-key-id", "ed25519:1", "-public-key", pub, "-room-version", "10"); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("verify-event: %d %s", code, out)
	}
	if code, _ := runCmd(t, "", "sign-json", "-server", "domain"); code != 2 {
		t.Fatalf("missing -key: %d", code)
	}
	if code, _ := runCmd(t, "", "frobnicate"); code != 2 {
		t.Fatalf("unknown command: %d", code)
	}
}

// TestCheck points check at a TLS test server on 127.0.0.1 that serves
// keys and a version, as a homeserver does.
func TestCheck(t *testing.T) {
	key, _ := signing.GenerateKey("ed25519:t")
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	defer srv.Close()
	name := strings.TrimPrefix(srv.URL, "https://")
	mux.Handle("/_matrix/key/", &keys.Handler{ServerName: name, Keys: []*signing.Key{key}})
	mux.HandleFunc("/_matrix/federation/v1/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"server":{"name":"TestServer","version":"9.9"}}`)
	})
	code, out := runCmd(t, "", "check", "-json", "-insecure", "-allow-private", name)
	if code != 0 {
		t.Fatalf("check: %d %s", code, out)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Discovery.Step != "1" || rep.Discovery.Host != name || rep.Version.Name != "TestServer" ||
		rep.Keys.VerifyKeys["ed25519:t"] != key.PublicBase64() || len(rep.TLS) != 1 || rep.TLS[0].Verified {
		t.Fatalf("report %+v", rep)
	}
	// Without -allow-private the guard refuses 127.0.0.1.
	if code, out := runCmd(t, "", "check", "-insecure", name); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("guard: %d %s", code, out)
	}
}

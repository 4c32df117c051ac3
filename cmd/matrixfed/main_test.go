package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
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

// TestKeyCommands: genkey writes the key file and prints its key ID and
// public key; pubkey derives them from either key file form; -h lists
// every subcommand.
func TestKeyCommands(t *testing.T) {
	dir := t.TempDir()
	for _, pem := range []bool{false, true} {
		path := filepath.Join(dir, fmt.Sprintf("key-%v", pem))
		args := []string{"genkey", "-id", "ed25519:t1", path}
		if pem {
			args = []string{"genkey", "-pem", "-id", "ed25519:t1", path}
		}
		code, out := runCmd(t, "", args...)
		if code != 0 {
			t.Fatalf("genkey pem=%v: %d %s", pem, code, out)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		k, err := signing.ParseKey(string(data))
		if err != nil {
			t.Fatalf("pem=%v: the written key file does not parse: %v", pem, err)
		}
		if pem != strings.HasPrefix(string(data), "-----BEGIN MATRIX PRIVATE KEY-----") {
			t.Fatalf("pem=%v: key file %q", pem, data)
		}
		want := "Key ID           ed25519:t1\nPublic key       " + k.PublicBase64() + "\n"
		if out != want {
			t.Fatalf("genkey pem=%v printed %q, want %q", pem, out, want)
		}
		if code, out := runCmd(t, "", "pubkey", path); code != 0 || out != want {
			t.Fatalf("pubkey pem=%v: %d %q, want %q", pem, code, out, want)
		}
		if code, _ := runCmd(t, "", args...); code != 1 {
			t.Fatalf("genkey over an existing file: %d", code)
		}
	}
	// The spec key in both forms gives its known public key.
	want := "Key ID           ed25519:1\nPublic key       XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI\n"
	spec, _ := signing.ParseKey("ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	for _, text := range []string{"ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1\n", string(spec.MarshalPEM())} {
		if code, out := runCmd(t, text, "pubkey"); code != 0 || out != want {
			t.Fatalf("pubkey of %q: %d %q", text, code, out)
		}
	}
	if code, _ := runCmd(t, "garbage", "pubkey"); code != 1 {
		t.Fatalf("pubkey of garbage: %d", code)
	}
	code, out := runCmd(t, "", "-h")
	if code != 0 {
		t.Fatalf("-h: %d", code)
	}
	for _, cmd := range []string{"check", "canonicalize", "genkey", "pubkey", "sign-json", "verify-json", "sign-event", "verify-event"} {
		if !strings.Contains(out, "matrixfed "+cmd+" ") {
			t.Errorf("-h does not list %s", cmd)
		}
	}
}

// TestCheckLocalhost: without -dns, check resolves "localhost" through the
// system resolver like any other name.
func TestCheckLocalhost(t *testing.T) {
	if addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil || len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Skipf("the system resolver does not know localhost here: %v %v", addrs, err)
	}
	key, _ := signing.GenerateKey("ed25519:t")
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	defer srv.Close()
	name := "localhost:" + srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	mux.Handle("/_matrix/key/", &keys.Handler{ServerName: name, Keys: []*signing.Key{key}})
	mux.HandleFunc("/_matrix/federation/v1/version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"server":{"name":"TestServer","version":"9.9"}}`)
	})
	code, out := runCmd(t, "", "check", "-json", "-insecure", "-allow-private", name)
	if code != 0 {
		t.Fatalf("check %s: %d %s", name, code, out)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Discovery.Step != "2" || rep.Keys.VerifyKeys["ed25519:t"] != key.PublicBase64() {
		t.Fatalf("report %+v", rep)
	}
}

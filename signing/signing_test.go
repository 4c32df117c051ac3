package signing

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// The spec appendix test key (FACTS 2.2). Its seed has non-zero padding bits.
const specKeyLine = "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

func specKey(t testing.TB) *Key {
	t.Helper()
	k, err := ParseKey(specKeyLine)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRules(t testing.TB, v string) roomversion.Rules {
	t.Helper()
	r, err := roomversion.Get(v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSpecKey(t *testing.T) {
	k := specKey(t)
	if k.KeyID() != "ed25519:1" || k.PublicBase64() != "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI" {
		t.Fatalf("key %s public %s", k.KeyID(), k.PublicBase64())
	}
	text, _ := k.MarshalText()
	again, err := ParseKey(string(text) + "\n")
	if err != nil || again.PublicBase64() != k.PublicBase64() || !strings.HasPrefix(string(text), "ed25519 1 ") {
		t.Fatalf("round trip %q: %v", text, err)
	}
	if strings.Contains(fmt.Sprint(k), "YJDB") {
		t.Fatal("String leaks the seed")
	}
}

func TestSpecJSONVectors(t *testing.T) {
	k := specKey(t)
	for _, tc := range []struct{ in, want string }{
		{`{}`, `{"signatures":{"domain":{"ed25519:1":"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"}}}`},
		{`{"one":1,"two":"Two"}`, `{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}`},
	} {
		got, err := SignJSON("domain", k.KeyID(), k.PrivateKey(), []byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("SignJSON(%s) = %s, %v\nwant %s", tc.in, got, err, tc.want)
		}
		if err := VerifyJSON("domain", "ed25519:1", k.Public(), []byte(tc.want)); err != nil {
			t.Errorf("VerifyJSON(%s): %v", tc.want, err)
		}
	}
}

func TestSignJSONKeepsOtherSignaturesAndUnsigned(t *testing.T) {
	k := specKey(t)
	in := `{"unsigned":{"x":1},"signatures":{"other.org":{"ed25519:z":"abc"}},"a":"b"}`
	out, err := SignJSON("domain", "ed25519:1", k.PrivateKey(), []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"other.org":{"ed25519:z":"abc"}`, `"unsigned":{"x":1}`, `"domain":{"ed25519:1":`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	// Changing unsigned does not break the signature; changing data does.
	if err := VerifyJSON("domain", "ed25519:1", k.Public(), []byte(strings.Replace(string(out), `"x":1`, `"x":2`, 1))); err != nil {
		t.Errorf("unsigned changed: %v", err)
	}
	if err := VerifyJSON("domain", "ed25519:1", k.Public(), []byte(strings.Replace(string(out), `"a":"b"`, `"a":"c"`, 1))); !errors.Is(err, ErrBadSignature) {
		t.Errorf("data changed: %v", err)
	}
	// Server names with dots and ports are keys, not paths.
	out2, err := SignJSON("example.org:8448", "ed25519:1", k.PrivateKey(), out)
	if err != nil || !strings.Contains(string(out2), `"example.org:8448":{"ed25519:1":`) {
		t.Fatalf("%s %v", out2, err)
	}
	if err := VerifyJSON("example.org:8448", "ed25519:1", k.Public(), out2); err != nil {
		t.Fatal(err)
	}
	if err := VerifyJSON("domain", "ed25519:1", k.Public(), out2); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyJSONFailures(t *testing.T) {
	k := specKey(t)
	good := `{"one":1,"signatures":{"domain":{"ed25519:1":"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}},"two":"Two"}`
	other, _ := GenerateKey("ed25519:2")
	tests := []struct {
		name, in, server string
		pub              ed25519.PublicKey
		want             error
	}{
		{"wrong server", good, "elsewhere", k.Public(), ErrMissingSignature},
		{"wrong key", good, "domain", other.Public(), ErrBadSignature},
		{"no signatures", `{"one":1}`, "domain", k.Public(), ErrMissingSignature},
		{"bad base64", strings.Replace(good, "KqmL", "K!mL", 1), "domain", k.Public(), ErrBadBase64},
		{"truncated", strings.Replace(good, "JI+6Bw", "", 1), "domain", k.Public(), ErrBadSignature},
		{"not object", `[1]`, "domain", k.Public(), ErrNotObject},
		{"bad public key", good, "domain", ed25519.PublicKey{1, 2}, ErrBadKey},
	}
	for _, tc := range tests {
		if err := VerifyJSON(tc.server, "ed25519:1", tc.pub, []byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Padded and URL-safe encodings of a signature are accepted (spec: be
	// lenient when decoding).
	padded := strings.Replace(good, "JI+6Bw", "JI+6Bw==", 1)
	if err := VerifyJSON("domain", "ed25519:1", k.Public(), []byte(padded)); err != nil {
		t.Errorf("padded: %v", err)
	}
	urlsafe := strings.NewReplacer("+", "-", "/", "_").Replace(good)
	if err := VerifyJSON("domain", "ed25519:1", k.Public(), []byte(urlsafe)); err != nil {
		t.Errorf("url-safe: %v", err)
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, bad := range []string{"", "ed25519 1", "rsa 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", "ed25519 a-b YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1",
		"ed25519 1 YJDBA9Xnr2sVqXD9", "ed25519 1 !!!", "ed25519  1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", strings.Repeat("x", 600)} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrBadBase64) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := GenerateKey("rsa:1"); !errors.Is(err, ErrBadKey) {
		t.Errorf("GenerateKey rsa: %v", err)
	}
	if _, err := NewKey("ed25519:1", ed25519.PrivateKey{1}); !errors.Is(err, ErrBadKey) {
		t.Errorf("NewKey short: %v", err)
	}
}

// Event vectors (FACTS 2.5, 2.6).
const (
	specEvent1 = `{"room_id":"!x:domain","sender":"@a:domain","origin":"domain","origin_server_ts":1000000,"signatures":{},"hashes":{},"type":"X","content":{},"prev_events":[],"auth_events":[],"depth":3,"unsigned":{"age_ts":1000000}}`
	specEvent2 = `{"content":{"body":"Here is the message content"},"event_id":"$0:domain","origin":"domain","origin_server_ts":1000000,"type":"m.room.message","room_id":"!r:domain","sender":"@u:domain","signatures":{},"unsigned":{"age_ts":1000000}}`
)

func TestSpecEventVectors(t *testing.T) {
	k := specKey(t)
	for _, tc := range []struct {
		name, version, in, want string
	}{
		{"event 1 v1", "1", specEvent1, `{"auth_events":[],"content":{},"depth":3,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"origin":"domain","origin_server_ts":1000000,"prev_events":[],"room_id":"!x:domain","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},"type":"X","unsigned":{"age_ts":1000000}}`},
		{"event 2 v1", "1", specEvent2, `{"content":{"body":"Here is the message content"},"event_id":"$0:domain","hashes":{"sha256":"onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},"origin":"domain","origin_server_ts":1000000,"room_id":"!r:domain","sender":"@u:domain","signatures":{"domain":{"ed25519:1":"Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},"type":"m.room.message","unsigned":{"age_ts":1000000}}`},
	} {
		// hashes:{} in event 1 has no sha256, so SignEvent adds it.
		got, err := SignEvent(mustRules(t, tc.version), "domain", k.KeyID(), k.PrivateKey(), []byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s, %v\nwant %s", tc.name, got, err, tc.want)
		}
	}
	// v11/v12 redaction drops origin, so the same events sign differently.
	for _, tc := range []struct{ in, sig string }{
		{specEvent1, "Jxp+1glFcZM+nnHpY0EkedRR7u0VmKsJYGnQqIvqus3UvL5X/p1y6wSkLhGoTBel6MZ9lrMIzUqrjqFquWJKBw"},
		{specEvent2, "4WQB/6LN2OtkUN/+18xUNB/U4RTX1N3EeKBdlCxux08YO8izKDrSRqML1XB8V97IK7AujkNO1xMl7TaBLA4kDw"},
	} {
		for _, v := range []string{"11", "12"} {
			got, err := SignEvent(mustRules(t, v), "domain", k.KeyID(), k.PrivateKey(), []byte(tc.in))
			if err != nil || !strings.Contains(string(got), tc.sig) {
				t.Errorf("v%s: %s, %v; want signature %s", v, got, err, tc.sig)
			}
		}
	}
}

const (
	v12Create = `{"auth_events":[],"content":{"room_version":"12"},"depth":1,"hashes":{"sha256":"ccqBumrNf46eCfIkdZSYW9RNafS0xFYYDm5rnZBSVJU"},"origin_server_ts":1000000,"prev_events":[],"sender":"@a:domain","signatures":{"domain":{"ed25519:1":"0iTJ32BZFymf41Y7UBttP2wZ0JTo6UjsLDQuf+79LB+WeKVfoLyR2I8RF23ZdFgCuxtjVBl5MKXIOWP+ocELDw"}},"state_key":"","type":"m.room.create"}`
	v12Join   = `{"auth_events":[],"content":{"membership":"join"},"depth":2,"hashes":{"sha256":"TcRcImZbXG5qc2WUTnU9xgCQyqqafSCLfFCb1WG80uU"},"origin_server_ts":1000001,"prev_events":["$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"],"room_id":"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"nCqEGEYAhRa0E3awGCYi+oLYGRofpBqY7MiaVvHkCmaZ4nsR51UUNYqThhV1IkaOXccoRStde9tj+XRwjMlkDg"}},"state_key":"@a:domain","type":"m.room.member"}`
)

// mapKeys is a KeyLookup over a fixed table with validity times.
type mapKeys map[string]struct {
	pub        ed25519.PublicKey
	validUntil time.Time
}

func (m mapKeys) VerifyKey(_ context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	k, ok := m[server+" "+keyID]
	if !ok {
		return nil, ErrUnknownKey
	}
	if !validAt.IsZero() && validAt.After(k.validUntil) {
		return nil, ErrKeyExpired
	}
	return k.pub, nil
}

func TestVerifyEvent(t *testing.T) {
	k := specKey(t)
	keys := mapKeys{"domain ed25519:1": {k.Public(), time.UnixMilli(9e12)}}
	ctx := context.Background()
	v12 := mustRules(t, "12")
	for _, ev := range []string{v12Create, v12Join} {
		if err := VerifyEvent(ctx, v12, []byte(ev), keys); err != nil {
			t.Fatalf("v12 vector: %v", err)
		}
	}
	// Key validity: the join is at 1000001, after the key's valid_until.
	expired := mapKeys{"domain ed25519:1": {k.Public(), time.UnixMilli(1000000)}}
	if err := VerifyEvent(ctx, v12, []byte(v12Join), expired); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("expired key: %v", err)
	}
	// Room version 4 does not enforce validity.
	v4 := mustRules(t, "4")
	signed4, err := SignEvent(v4, "domain", k.KeyID(), k.PrivateKey(), []byte(strings.Replace(specEvent1, `"origin_server_ts":1000000`, `"origin_server_ts":2000000`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyEvent(ctx, v4, signed4, expired); err != nil {
		t.Fatalf("v4 ignores validity: %v", err)
	}
	if err := VerifyEvent(ctx, mustRules(t, "5"), signed4, expired); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("v5 enforces validity: %v", err)
	}
	if err := VerifyEvent(ctx, v12, []byte(v12Join), mapKeys{}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	// A content change that redaction removes: signature fine, hash not.
	tampered := strings.Replace(v12Join, `"membership":"join"`, `"membership":"join","displayname":"x"`, 1)
	if err := VerifyEvent(ctx, v12, []byte(tampered), keys); !errors.Is(err, hashing.ErrContentHashMismatch) {
		t.Fatalf("content tampered: %v", err)
	}
	// A change to a key that survives redaction breaks the signature.
	tampered = strings.Replace(v12Join, `"depth":2`, `"depth":3`, 1)
	if err := VerifyEvent(ctx, v12, []byte(tampered), keys); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("depth tampered: %v", err)
	}
	// Signature by the wrong server: sender is @a:domain.
	other, _ := GenerateKey("ed25519:x")
	wrong, err := SignEvent(v12, "evil.org", other.KeyID(), other.PrivateKey(), []byte(strings.Replace(v12Join, `"domain":{"ed25519:1"`, `"domain2":{"ed25519:1"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	keys2 := mapKeys{"evil.org ed25519:x": {other.Public(), time.UnixMilli(9e12)}}
	if err := VerifyEvent(ctx, v12, wrong, keys2); !errors.Is(err, ErrMissingSignature) {
		t.Fatalf("wrong server: %v", err)
	}
}

func TestRequiredSigners(t *testing.T) {
	for _, tc := range []struct {
		version, ev string
		want        []string
	}{
		{"1", `{"sender":"@a:one.org","event_id":"$x:two.org","type":"m.room.message"}`, []string{"one.org", "two.org"}},
		{"1", `{"sender":"@a:one.org","event_id":"$x:one.org","type":"m.room.message"}`, []string{"one.org"}},
		{"3", `{"sender":"@a:one.org","event_id":"$x:two.org","type":"m.room.message"}`, []string{"one.org"}},
		{"8", `{"sender":"@a:one.org","type":"m.room.member","content":{"membership":"join","join_authorised_via_users_server":"@b:three.org"}}`, []string{"one.org", "three.org"}},
		{"7", `{"sender":"@a:one.org","type":"m.room.member","content":{"membership":"join","join_authorised_via_users_server":"@b:three.org"}}`, []string{"one.org"}},
		{"10", `{"sender":"@a:one.org","type":"m.room.member","content":{"membership":"invite","third_party_invite":{"signed":{}}}}`, nil},
	} {
		got, err := RequiredSigners(mustRules(t, tc.version), []byte(tc.ev))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("v%s %s: %v %v, want %v", tc.version, tc.ev, got, err, tc.want)
		}
	}
	if _, err := RequiredSigners(mustRules(t, "10"), []byte(`{"sender":"nope"}`)); err == nil {
		t.Error("bad sender accepted")
	}
}

func TestVerifyEvents(t *testing.T) {
	k := specKey(t)
	keys := mapKeys{"domain ed25519:1": {k.Public(), time.UnixMilli(9e12)}}
	v12 := mustRules(t, "12")
	evs := [][]byte{[]byte(v12Create), []byte(v12Join), []byte(strings.Replace(v12Join, `"depth":2`, `"depth":3`, 1)), []byte(`nope`)}
	for range 50 {
		evs = append(evs, []byte(v12Join))
	}
	res := VerifyEvents(context.Background(), v12, evs, keys)
	if res[0] != nil || res[1] != nil || !errors.Is(res[2], ErrBadSignature) || res[3] == nil {
		t.Fatalf("results %v", res[:4])
	}
	for i, err := range res[4:] {
		if err != nil {
			t.Fatalf("event %d: %v", i+4, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(specKeyLine)
	f.Add("ed25519 a_1 AAAA")
	f.Fuzz(func(t *testing.T, line string) {
		k, err := ParseKey(line)
		if err != nil {
			return
		}
		text, _ := k.MarshalText()
		again, err := ParseKey(string(text))
		if err != nil || again.PublicBase64() != k.PublicBase64() || again.KeyID() != k.KeyID() {
			t.Fatalf("round trip of %q failed: %v", line, err)
		}
	})
}

func FuzzDecodeBase64(f *testing.F) {
	for _, s := range []string{"", "Zg", "Zm8=", "Zm9vYmFy", "a-_b", "a+/b", "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeBase64(s)
		if err != nil {
			return
		}
		// Re-encoding and decoding again gives the same bytes.
		again, err := DecodeBase64(EncodeBase64(b))
		if err != nil || string(again) != string(b) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

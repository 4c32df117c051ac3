package hashing

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/internal/b64"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func mustRules(t testing.TB, v string) roomversion.Rules {
	t.Helper()
	r, err := roomversion.Get(v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Spec appendix event signing vectors (FACTS 2.5) and derived ones (2.6).
const (
	specEvent1       = `{"room_id":"!x:domain","sender":"@a:domain","origin":"domain","origin_server_ts":1000000,"signatures":{},"hashes":{},"type":"X","content":{},"prev_events":[],"auth_events":[],"depth":3,"unsigned":{"age_ts":1000000}}`
	specEvent1Hash   = "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
	specEvent1Signed = `{"auth_events":[],"content":{},"depth":3,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"origin":"domain","origin_server_ts":1000000,"prev_events":[],"room_id":"!x:domain","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},"type":"X","unsigned":{"age_ts":1000000}}`
	specEvent2       = `{"content":{"body":"Here is the message content"},"event_id":"$0:domain","origin":"domain","origin_server_ts":1000000,"type":"m.room.message","room_id":"!r:domain","sender":"@u:domain","signatures":{},"unsigned":{"age_ts":1000000}}`
	specEvent2Hash   = "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"
	v12Create        = `{"auth_events":[],"content":{"room_version":"12"},"depth":1,"hashes":{"sha256":"ccqBumrNf46eCfIkdZSYW9RNafS0xFYYDm5rnZBSVJU"},"origin_server_ts":1000000,"prev_events":[],"sender":"@a:domain","signatures":{"domain":{"ed25519:1":"0iTJ32BZFymf41Y7UBttP2wZ0JTo6UjsLDQuf+79LB+WeKVfoLyR2I8RF23ZdFgCuxtjVBl5MKXIOWP+ocELDw"}},"state_key":"","type":"m.room.create"}`
	v12Join          = `{"auth_events":[],"content":{"membership":"join"},"depth":2,"hashes":{"sha256":"TcRcImZbXG5qc2WUTnU9xgCQyqqafSCLfFCb1WG80uU"},"origin_server_ts":1000001,"prev_events":["$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"],"room_id":"!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"nCqEGEYAhRa0E3awGCYi+oLYGRofpBqY7MiaVvHkCmaZ4nsR51UUNYqThhV1IkaOXccoRStde9tj+XRwjMlkDg"}},"state_key":"@a:domain","type":"m.room.member"}`
)

func TestSpecContentHashes(t *testing.T) {
	for _, tc := range []struct{ ev, want string }{
		{specEvent1, specEvent1Hash}, {specEvent2, specEvent2Hash},
		{v12Create, "ccqBumrNf46eCfIkdZSYW9RNafS0xFYYDm5rnZBSVJU"}, {v12Join, "TcRcImZbXG5qc2WUTnU9xgCQyqqafSCLfFCb1WG80uU"},
	} {
		h, err := ContentHash([]byte(tc.ev))
		if err != nil || b64.Std(h) != tc.want {
			t.Errorf("content hash %s, %v; want %s", b64.Std(h), err, tc.want)
		}
	}
	if err := CheckContentHash([]byte(specEvent1Signed)); err != nil {
		t.Errorf("signed spec event 1: %v", err)
	}
	withHash, err := AddContentHash([]byte(specEvent2))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckContentHash(withHash); err != nil {
		t.Errorf("after AddContentHash: %v", err)
	}
}

func TestCheckContentHashFailures(t *testing.T) {
	tampered := strings.Replace(specEvent1Signed, `"depth":3`, `"depth":4`, 1)
	if err := CheckContentHash([]byte(tampered)); !errors.Is(err, ErrContentHashMismatch) {
		t.Errorf("tampered: %v", err)
	}
	if err := CheckContentHash([]byte(specEvent1)); !errors.Is(err, ErrMissingContentHash) {
		t.Errorf("no hash: %v", err)
	}
	bad := strings.Replace(specEvent1Signed, specEvent1Hash, "!!notbase64", 1)
	if err := CheckContentHash([]byte(bad)); !errors.Is(err, ErrContentHashMismatch) {
		t.Errorf("bad base64: %v", err)
	}
	// Changing unsigned or signatures does not matter.
	other := strings.Replace(specEvent1Signed, `"age_ts":1000000`, `"age_ts":5`, 1)
	if err := CheckContentHash([]byte(other)); err != nil {
		t.Errorf("unsigned changed: %v", err)
	}
}

func TestSpecEventIDs(t *testing.T) {
	for _, tc := range []struct {
		version, ev, want string
	}{
		{"1", specEvent2, "$0:domain"},
		{"3", specEvent1Signed, "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc"},
		{"10", specEvent1Signed, "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc"},
		{"11", specEvent1Signed, "$70O_oKlXzFbkfu0KE88USi98DjSWrOELrPj-8tisl8I"},
		{"12", v12Create, "$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"},
		{"12", v12Join, "$6SmfXRmPKZktUiSQl9V_6azWFIFoRunj3pNs6rxiw-g"},
	} {
		got, err := EventID(mustRules(t, tc.version), []byte(tc.ev))
		if err != nil || got != tc.want {
			t.Errorf("v%s: %s, %v; want %s", tc.version, got, err, tc.want)
		}
	}
	// Version 3 uses the standard alphabet.
	h, _ := ReferenceHash(mustRules(t, "11"), []byte(specEvent1Signed))
	if b64.Std(h) != "70O/oKlXzFbkfu0KE88USi98DjSWrOELrPj+8tisl8I" {
		t.Errorf("v11 reference hash %s", b64.Std(h))
	}
	rid, err := RoomIDFromCreate(mustRules(t, "12"), []byte(v12Create))
	if err != nil || rid != "!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM" {
		t.Errorf("room ID %s %v", rid, err)
	}
	if _, err := RoomIDFromCreate(mustRules(t, "11"), []byte(v12Create)); !errors.Is(err, ErrNotApplicable) {
		t.Errorf("v11 room ID from create: %v", err)
	}
	for _, bad := range []string{`{}`, `{"event_id":5}`, `{"event_id":"$nocolon"}`, `{"event_id":"$a:bad server"}`} {
		if _, err := EventID(mustRules(t, "2"), []byte(bad)); !errors.Is(err, ErrBadEventID) {
			t.Errorf("v2 %s: %v", bad, err)
		}
	}
}

// TestRedactionVectors: one vector per room version per event type, with
// the expected output derived independently (testdata/gen_redaction.py).
func TestRedactionVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/redaction/*.json")
	if err != nil || len(files) != 12*11 {
		t.Fatalf("want 132 redaction vectors, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			header, in, want := readVector(t, f)
			if header != "# expect: redacted" {
				t.Fatalf("unknown header %q", header)
			}
			var v int
			if _, err := fmt.Sscanf(name, "v%02d_", &v); err != nil {
				t.Fatal(err)
			}
			got, err := Redact(mustRules(t, fmt.Sprint(v)), in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func readVector(t *testing.T, path string) (header string, in, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 {
		t.Fatalf("%s: want 3 lines, got %d", path, len(lines))
	}
	return lines[0], []byte(lines[1]), []byte(lines[2])
}

func TestRedactBadInput(t *testing.T) {
	r := mustRules(t, "10")
	for _, bad := range []string{`[]`, `"x"`, `{"type":"m.room.member","content":[]}`, `{"type":"m.room.member","content":{"membership":"join","membership":"leave"}}`, `{`} {
		if _, err := Redact(r, []byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	// No content: the redacted event has an empty one.
	got, err := Redact(r, []byte(`{"type":"m.room.message","sender":"@a:b"}`))
	if err != nil || string(got) != `{"content":{},"sender":"@a:b","type":"m.room.message"}` {
		t.Errorf("no content: %s %v", got, err)
	}
}

func BenchmarkEventID(b *testing.B) {
	r := mustRules(b, "10")
	ev := []byte(specEvent1Signed)
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if _, err := EventID(r, ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkContentHash(b *testing.B) {
	ev := []byte(specEvent2)
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if _, err := ContentHash(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSigningForm: the one-pass form equals Redact then omitting
// signatures and unsigned, and its hash is the reference hash.
func TestSigningForm(t *testing.T) {
	for _, r := range roomversion.All() {
		for _, ev := range []string{specEvent1Signed, specEvent2, v12Join} {
			got, err := SigningForm(r, []byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			red, err := Redact(r, []byte(ev))
			if err != nil {
				t.Fatal(err)
			}
			want, err := canonicaljson.Append(nil, red, canonicaljson.Options{Omit: []string{"signatures", "unsigned"}})
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("v%s: %s\nwant %s", r.ID, got, want)
			}
			ref, _ := ReferenceHash(r, []byte(ev))
			if sum := sha256.Sum256(got); !bytes.Equal(sum[:], ref) {
				t.Fatalf("v%s: reference hash differs", r.ID)
			}
		}
	}
}

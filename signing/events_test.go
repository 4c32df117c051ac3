package signing

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// eventCorpus returns signed v10 events of many kinds, good and bad, and
// the keys that know their signers.
func eventCorpus(t *testing.T) ([][]byte, mapKeys) {
	t.Helper()
	rules := mustRules(t, "10")
	a, _ := GenerateKey("ed25519:a")
	a2, _ := GenerateKey("ed25519:a2")
	b, _ := GenerateKey("ed25519:b")
	keys := mapKeys{
		"one.org ed25519:a":  {a.Public(), time.UnixMilli(9e12)},
		"one.org ed25519:a2": {a2.Public(), time.UnixMilli(9e12)},
		"two.org ed25519:b":  {b.Public(), time.UnixMilli(1700000000150)}, // expires mid-corpus
	}
	sign := func(server string, k *Key, ev []byte) []byte {
		out, err := SignEvent(rules, server, k.KeyID(), k.PrivateKey(), ev)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var evs [][]byte
	for i := range 300 {
		ev := []byte(fmt.Sprintf(`{"type":"m.room.message","room_id":"!r:one.org","sender":"@u%d:one.org","origin_server_ts":%d,"depth":%d,"prev_events":[],"auth_events":[],"content":{"body":"hello %d"}}`, i, 1700000000000+i, i+1, i))
		good := sign("one.org", a, ev)
		switch i % 12 {
		case 0: // content changed after signing: hash mismatch
			evs = append(evs, []byte(strings.Replace(string(good), "hello", "HELLO", 1)))
		case 1: // a redaction-surviving field changed: bad signature
			evs = append(evs, []byte(strings.Replace(string(good), `"depth":`, `"depth":1`, 1)))
		case 2: // signed only by an unknown key
			k, _ := GenerateKey("ed25519:zz")
			evs = append(evs, sign("one.org", k, ev))
		case 3: // a bad signature first, a good one by another key after it
			bad := sign("one.org", a, []byte(strings.Replace(string(ev), "hello", "other", 1)))
			sigA := gjsonString(t, bad, `signatures.one\.org.ed25519:a`)
			withA2 := sign("one.org", a2, good)
			evs = append(evs, []byte(strings.Replace(string(withA2), gjsonString(t, good, `signatures.one\.org.ed25519:a`), sigA, 1)))
		case 4: // restricted-join style second signer, key expiring mid-corpus
			join := []byte(fmt.Sprintf(`{"type":"m.room.member","state_key":"@u%d:one.org","room_id":"!r:one.org","sender":"@u%d:one.org","origin_server_ts":%d,"depth":%d,"prev_events":[],"auth_events":[],"content":{"membership":"join","join_authorised_via_users_server":"@admin:two.org"}}`, i, i, 1700000000000+i, i+1))
			evs = append(evs, sign("two.org", b, sign("one.org", a, join)))
		case 5: // padded base64 signature: accepted, receivers decode both
			sig := gjsonString(t, good, `signatures.one\.org.ed25519:a`)
			evs = append(evs, []byte(strings.Replace(string(good), sig, sig+"==", 1)))
		case 6: // signature that is not base64
			sig := gjsonString(t, good, `signatures.one\.org.ed25519:a`)
			evs = append(evs, []byte(strings.Replace(string(good), sig, "!!"+sig[2:], 1)))
		case 7: // truncated signature
			sig := gjsonString(t, good, `signatures.one\.org.ed25519:a`)
			evs = append(evs, []byte(strings.Replace(string(good), sig, sig[:40], 1)))
		case 8: // not JSON
			evs = append(evs, []byte(`{"type":`))
		default:
			evs = append(evs, good)
		}
	}
	return evs, keys
}

func gjsonString(t *testing.T, ev []byte, path string) string {
	t.Helper()
	obj := gjson.GetBytes(ev, path).Str
	if obj == "" {
		t.Fatalf("no %s in %s", path, ev)
	}
	return obj
}

// TestVerifyEventsBatchMatchesVerifyEvent: both modes of
// VerifyEventsWithOptions give VerifyEvent's exact result for every event.
func TestVerifyEventsBatchMatchesVerifyEvent(t *testing.T) {
	evs, keys := eventCorpus(t)
	rules := mustRules(t, "10")
	ctx := context.Background()
	kinds := map[string]int{}
	for _, batch := range []bool{false, true} {
		rnd := &countingReader{}
		got := VerifyEventsWithOptions(ctx, rules, evs, keys, VerifyOptions{Batch: batch, Rand: rnd})
		if batch && rnd.n < 16*len(evs)/2 {
			t.Fatalf("the batch equation read %d random bytes: most events skipped the fast path", rnd.n)
		}
		for i, ev := range evs {
			want := VerifyEvent(ctx, rules, ev, keys)
			if fmt.Sprint(got[i]) != fmt.Sprint(want) {
				t.Fatalf("batch=%v event %d: got %v, VerifyEvent says %v", batch, i, got[i], want)
			}
			if batch {
				kinds[fmt.Sprint(want)]++
			}
		}
	}
	// The corpus exercises each outcome.
	for _, sentinel := range []error{nil, hashing.ErrContentHashMismatch, ErrBadSignature, ErrUnknownKey, ErrKeyExpired, ErrBadBase64} {
		n := 0
		for _, ev := range evs {
			if err := VerifyEvent(ctx, rules, ev, keys); (sentinel == nil && err == nil) || (sentinel != nil && errors.Is(err, sentinel)) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no event in the corpus gives %v", sentinel)
		}
	}
	if len(kinds) < 6 {
		t.Errorf("only %d distinct results: %v", len(kinds), kinds)
	}
}

// countingReader is crypto/rand counting the bytes read.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := rand.Read(p)
	c.n += n
	return n, err
}

// referenceVerify is VerifyEvent without the one-pass preparation: each
// step on its own, as the spec lists them.
func referenceVerify(ctx context.Context, rules roomversion.Rules, event []byte, keys KeyLookup) error {
	p, err := prepareEvent(rules, event)
	if err != nil {
		return err
	}
	for _, server := range p.signers {
		if err := verifyServer(ctx, keys, p.sigs, server, p.signed, p.validAt); err != nil {
			return err
		}
	}
	return hashing.CheckContentHash(event)
}

// TestVerifyEventOnePass: VerifyEvent's one-pass preparation gives the
// step-by-step result on every corpus event, in several room versions.
func TestVerifyEventOnePass(t *testing.T) {
	evs, keys := eventCorpus(t)
	evs = append(evs, []byte(v12Create), []byte(v12Join), []byte(`{"sender":"@a:b","type":"m.room.member","content":{"membership":"join","join_authorised_via_users_server":5}}`))
	for _, v := range []string{"1", "5", "8", "10", "12"} {
		rules := mustRules(t, v)
		for i, ev := range evs {
			got := VerifyEvent(context.Background(), rules, ev, keys)
			want := referenceVerify(context.Background(), rules, ev, keys)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("v%s event %d: %v, step by step %v", v, i, got, want)
			}
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// TestVerifyEventsBatchRandomFailure: without randomness the batch path
// falls back to VerifyEvent rather than failing good events.
func TestVerifyEventsBatchRandomFailure(t *testing.T) {
	evs, keys := eventCorpus(t)
	rules := mustRules(t, "10")
	got := VerifyEventsWithOptions(context.Background(), rules, evs, keys, VerifyOptions{Batch: true, Rand: errReader{}})
	for i, ev := range evs {
		if want := VerifyEvent(context.Background(), rules, ev, keys); fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Fatalf("event %d: got %v, want %v", i, got[i], want)
		}
	}
}

func TestVerifyEventsCancelled(t *testing.T) {
	evs, keys := eventCorpus(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, batch := range []bool{false, true} {
		for i, err := range VerifyEventsWithOptions(ctx, mustRules(t, "10"), evs, keys, VerifyOptions{Batch: batch}) {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("batch=%v event %d: %v", batch, i, err)
			}
		}
	}
}

// FuzzVerifyEventOnePass compares VerifyEvent with referenceVerify on
// mutated events.
func FuzzVerifyEventOnePass(f *testing.F) {
	k := specKey(f)
	keys := mapKeys{"domain ed25519:1": {k.Public(), time.UnixMilli(9e12)}}
	for _, ev := range []string{v12Create, v12Join, specEvent1, specEvent2} {
		f.Add([]byte(ev), uint8(11))
	}
	versions := roomversion.All()
	f.Fuzz(func(t *testing.T, ev []byte, v uint8) {
		rules := versions[int(v)%len(versions)]
		got := VerifyEvent(context.Background(), rules, ev, keys)
		want := referenceVerify(context.Background(), rules, ev, keys)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("v%s: %v, step by step %v", rules.ID, got, want)
		}
	})
}

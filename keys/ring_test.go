package keys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func genKey(t testing.TB, id string) *signing.Key {
	t.Helper()
	k, err := signing.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// serverKeys builds and parses a response for server.
func serverKeys(t testing.TB, server string, validUntil int64, cur []*signing.Key, old ...OldKey) *ServerKeys {
	t.Helper()
	raw, err := Build(server, validUntil, cur, old)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := Parse(raw, server)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// fakeSource answers from a function and counts calls.
type fakeSource struct {
	calls   atomic.Int64
	release chan struct{} // if non-nil, each call waits for it to close
	fn      func(server string, keyIDs []string, minValid time.Time) ([]*ServerKeys, error)
}

func (s *fakeSource) FetchKeys(ctx context.Context, server string, keyIDs []string, minValid time.Time) ([]*ServerKeys, error) {
	s.calls.Add(1)
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.fn(server, keyIDs, minValid)
}

func static(sks ...*ServerKeys) *fakeSource {
	return &fakeSource{fn: func(string, []string, time.Time) ([]*ServerKeys, error) { return sks, nil }}
}

func failing(err error) *fakeSource {
	return &fakeSource{fn: func(string, []string, time.Time) ([]*ServerKeys, error) { return nil, err }}
}

func TestRingValidity(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	k1, oldK := genKey(t, "ed25519:1"), genKey(t, "ed25519:old")
	day := int64(24 * time.Hour / time.Millisecond)
	sk := serverKeys(t, "a.example", now+30*day, []*signing.Key{k1},
		OldKey{KeyID: oldK.KeyID(), Public: oldK.Public(), ExpiredTS: now - day})
	src := static(sk)
	r := &Ring{Sources: []Source{src}, Now: c.Now}
	ctx := context.Background()
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }

	tests := []struct {
		name    string
		keyID   string
		validAt time.Time
		err     error
	}{
		{"current key, any time", "ed25519:1", time.Time{}, nil},
		{"current key now", "ed25519:1", at(now), nil},
		{"current key at 7-day cap", "ed25519:1", at(now + 7*day), nil},
		{"current key past 7-day cap", "ed25519:1", at(now + 7*day + 1), signing.ErrKeyExpired},
		{"old key before expiry", "ed25519:old", at(now - day), nil},
		{"old key after expiry", "ed25519:old", at(now - day + 1), signing.ErrKeyExpired},
		{"old key, any time (v1-4)", "ed25519:old", time.Time{}, nil},
		{"unknown key", "ed25519:nope", time.Time{}, signing.ErrUnknownKey},
	}
	for _, tc := range tests {
		pub, err := r.VerifyKey(ctx, "a.example", tc.keyID, tc.validAt)
		if tc.err == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			want := k1.Public()
			if tc.keyID == "ed25519:old" {
				want = oldK.Public()
			}
			if !pub.Equal(want) {
				t.Errorf("%s: wrong key", tc.name)
			}
		} else if !errors.Is(err, tc.err) || pub != nil {
			t.Errorf("%s: got %v, %v; want %v", tc.name, pub != nil, err, tc.err)
		}
	}
	// One fetch: every later miss fell within MinRefetch.
	if n := src.calls.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	// After MinRefetch, a miss fetches again (and still fails).
	c.advance(DefaultMinRefetch)
	if _, err := r.VerifyKey(ctx, "a.example", "ed25519:nope", time.Time{}); !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("unknown after refetch: %v", err)
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("%d fetches after MinRefetch, want 2", n)
	}
}

func TestRingShortValidUntil(t *testing.T) {
	// valid_until_ts below the 7-day cap is the limit; a refetch that
	// extends it makes the key valid again.
	c := newClock()
	now := c.Now().UnixMilli()
	k := genKey(t, "ed25519:k")
	first := serverKeys(t, "b.example", now+1000, []*signing.Key{k})
	second := serverKeys(t, "b.example", now+1_000_000, []*signing.Key{k})
	var mins []int64
	var mu sync.Mutex
	n := 0
	src := &fakeSource{fn: func(_ string, _ []string, minValid time.Time) ([]*ServerKeys, error) {
		mu.Lock()
		defer mu.Unlock()
		mins = append(mins, minValid.UnixMilli())
		n++
		if n == 1 {
			return []*ServerKeys{first}, nil
		}
		return []*ServerKeys{second}, nil
	}}
	r := &Ring{Sources: []Source{src}, Now: c.Now, MinRefetch: -1}
	ctx := context.Background()
	if _, err := r.VerifyKey(ctx, "b.example", "ed25519:k", time.UnixMilli(now+1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyKey(ctx, "b.example", "ed25519:k", time.UnixMilli(now+5000)); err != nil {
		t.Fatalf("after extension: %v", err)
	}
	if src.calls.Load() != 2 {
		t.Errorf("%d fetches, want 2", src.calls.Load())
	}
	if mins[1] != now+5000 {
		t.Errorf("refetch asked minimum_valid_until %d, want %d", mins[1], now+5000)
	}
	if mins[0] != now+1000 {
		t.Errorf("first fetch asked minimum_valid_until %d, want %d", mins[0], now+1000)
	}
}

func TestRingKeyConflict(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	k := genKey(t, "ed25519:1")
	evil := genKey(t, "ed25519:1") // same ID, different key
	other := genKey(t, "ed25519:2")
	r := &Ring{Now: c.Now}
	if err := r.Add(serverKeys(t, "c.example", now+1e6, []*signing.Key{k})); err != nil {
		t.Fatal(err)
	}
	err := r.Add(serverKeys(t, "c.example", now+2e6, []*signing.Key{evil, other}))
	if !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("conflicting response: %v", err)
	}
	pub, err := r.VerifyKey(context.Background(), "c.example", "ed25519:1", time.Time{})
	if err != nil || !pub.Equal(k.Public()) {
		t.Errorf("cached key replaced: %v", err)
	}
	// The rejected response is dropped whole: ed25519:2 was not stored.
	if _, err := r.VerifyKey(context.Background(), "c.example", "ed25519:2", time.Time{}); !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("key from rejected response: %v", err)
	}
	// The same key again is fine and extends validity.
	if err := r.Add(serverKeys(t, "c.example", now+3e6, []*signing.Key{k})); err != nil {
		t.Errorf("same key again: %v", err)
	}
	if _, err := r.VerifyKey(context.Background(), "c.example", "ed25519:1", time.UnixMilli(now+3e6)); err != nil {
		t.Errorf("extended validity: %v", err)
	}
}

func TestRingFetchConflictRejected(t *testing.T) {
	// Through a source: a conflicting key is not accepted.
	c := newClock()
	now := c.Now().UnixMilli()
	k, evil := genKey(t, "ed25519:1"), genKey(t, "ed25519:1")
	r := &Ring{Now: c.Now, Sources: []Source{static(serverKeys(t, "d.example", now+1e9, []*signing.Key{evil}))}}
	r.Add(serverKeys(t, "d.example", now+1000, []*signing.Key{k}))
	pub, err := r.VerifyKey(context.Background(), "d.example", "ed25519:1", time.UnixMilli(now+5000))
	if !errors.Is(err, signing.ErrKeyExpired) || pub != nil {
		t.Fatalf("got %v, %v; want ErrKeyExpired (the conflicting key must not extend or replace)", pub, err)
	}
}

func TestRingFallback(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	k := genKey(t, "ed25519:1")
	direct := failing(errors.New("connection refused"))
	notary := static(serverKeys(t, "e.example", now+1e6, []*signing.Key{k}))
	r := &Ring{Now: c.Now, Sources: []Source{direct, notary}}
	pub, err := r.VerifyKey(context.Background(), "e.example", "ed25519:1", c.Now())
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("fallback: %v", err)
	}
	if direct.calls.Load() != 1 || notary.calls.Load() != 1 {
		t.Errorf("calls direct=%d notary=%d", direct.calls.Load(), notary.calls.Load())
	}
	// Direct succeeds but lacks the key: notary asked too.
	k2 := genKey(t, "ed25519:2")
	direct2 := static(serverKeys(t, "f.example", now+1e6, []*signing.Key{k}))
	notary2 := static(serverKeys(t, "f.example", now+1e6, []*signing.Key{k, k2}))
	r2 := &Ring{Now: c.Now, Sources: []Source{direct2, notary2}}
	if _, err := r2.VerifyKey(context.Background(), "f.example", "ed25519:2", time.Time{}); err != nil {
		t.Fatalf("fallback on missing key: %v", err)
	}
	// Direct has it: notary not asked.
	notary3 := static()
	r3 := &Ring{Now: c.Now, Sources: []Source{static(serverKeys(t, "g.example", now+1e6, []*signing.Key{k})), notary3}}
	if _, err := r3.VerifyKey(context.Background(), "g.example", "ed25519:1", time.Time{}); err != nil || notary3.calls.Load() != 0 {
		t.Errorf("direct hit: err %v, notary calls %d", err, notary3.calls.Load())
	}
	// Every source fails: ErrUnknownKey with the causes joined.
	r4 := &Ring{Now: c.Now, Sources: []Source{failing(ErrFetch), failing(ErrNotarySignature)}}
	_, err = r4.VerifyKey(context.Background(), "h.example", "ed25519:1", time.Time{})
	if !errors.Is(err, signing.ErrUnknownKey) || !errors.Is(err, ErrFetch) || !errors.Is(err, ErrNotarySignature) {
		t.Errorf("all sources failed: %v", err)
	}
	// Other servers in a response are ignored.
	r5 := &Ring{Now: c.Now, Sources: []Source{static(serverKeys(t, "x.example", now+1e6, []*signing.Key{k}))}}
	if _, err := r5.VerifyKey(context.Background(), "y.example", "ed25519:1", time.Time{}); !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("keys of another server accepted: %v", err)
	}
}

// TestRingConcurrentMissesFetchOnce: 10,000 concurrent lookups of an
// uncached server's key cause exactly one fetch.
func TestRingConcurrentMissesFetchOnce(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:1")
	src := static(serverKeys(t, "busy.example", c.Now().UnixMilli()+1e6, []*signing.Key{k}))
	src.release = make(chan struct{})
	r := &Ring{Now: c.Now, Sources: []Source{src}}
	const n = 10000
	var started, failed atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			started.Add(1)
			pub, err := r.VerifyKey(context.Background(), "busy.example", "ed25519:1", time.Time{})
			if err != nil || !pub.Equal(k.Public()) {
				failed.Add(1)
			}
		})
	}
	for started.Load() < n {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the last callers reach the wait
	close(src.release)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d lookups failed", f)
	}
	if calls := src.calls.Load(); calls != 1 {
		t.Errorf("%d fetches, want exactly 1", calls)
	}
}

func TestRingWaiterCancel(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:1")
	src := static(serverKeys(t, "slow.example", c.Now().UnixMilli()+1e6, []*signing.Key{k}))
	src.release = make(chan struct{})
	r := &Ring{Now: c.Now, Sources: []Source{src}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := r.VerifyKey(ctx, "slow.example", "ed25519:1", time.Time{})
		done <- err
	}()
	for src.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	// The fetch carries on and fills the cache.
	close(src.release)
	pub, err := r.VerifyKey(context.Background(), "slow.example", "ed25519:1", time.Time{})
	if err != nil || !pub.Equal(k.Public()) || src.calls.Load() != 1 {
		t.Errorf("after cancel: %v, %d fetches", err, src.calls.Load())
	}
}

func TestRingNoSources(t *testing.T) {
	var r Ring
	if _, err := r.VerifyKey(context.Background(), "z.example", "ed25519:1", time.Time{}); !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("zero ring: %v", err)
	}
}

func TestRingEviction(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:1")
	r := &Ring{Now: c.Now, MaxServers: 10}
	for i := range 50 {
		r.Add(serverKeys(t, "s"+string(rune('a'+i%26))+string(rune('a'+i/26))+".example", c.Now().UnixMilli()+1e6, []*signing.Key{k}))
	}
	r.mu.RLock()
	ns, nk := len(r.servers), len(r.keys)
	r.mu.RUnlock()
	if ns > 10 || nk > 10 {
		t.Errorf("ring holds %d servers, %d keys; bound 10", ns, nk)
	}
}

func TestRingHitAllocs(t *testing.T) {
	c := newClock()
	k := genKey(t, "ed25519:1")
	r := &Ring{Now: c.Now}
	r.Add(serverKeys(t, "hot.example", c.Now().UnixMilli()+1e6, []*signing.Key{k}))
	ctx := context.Background()
	at := c.Now()
	var pub ed25519.PublicKey
	allocs := testing.AllocsPerRun(1000, func() {
		pub, _ = r.VerifyKey(ctx, "hot.example", "ed25519:1", at)
	})
	if allocs != 0 || !pub.Equal(k.Public()) {
		t.Errorf("cache hit: %v allocs/op (want 0), key ok %v", allocs, pub.Equal(k.Public()))
	}
}

func BenchmarkRingHit(b *testing.B) {
	c := newClock()
	k := genKey(b, "ed25519:1")
	r := &Ring{Now: c.Now}
	r.Add(serverKeys(b, "hot.example", c.Now().UnixMilli()+1e6, []*signing.Key{k}))
	ctx := context.Background()
	at := c.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.VerifyKey(ctx, "hot.example", "ed25519:1", at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRingHitParallel(b *testing.B) {
	c := newClock()
	k := genKey(b, "ed25519:1")
	r := &Ring{Now: c.Now}
	r.Add(serverKeys(b, "hot.example", c.Now().UnixMilli()+1e6, []*signing.Key{k}))
	at := c.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.VerifyKey(context.Background(), "hot.example", "ed25519:1", at); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRingServerKeys(t *testing.T) {
	c := newClock()
	now := c.Now().UnixMilli()
	k := genKey(t, "ed25519:1")
	short := serverKeys(t, "n.example", now+1000, []*signing.Key{k})
	long := serverKeys(t, "n.example", now+1e9, []*signing.Key{k})
	var mu sync.Mutex
	answer, fail := short, false
	src := &fakeSource{fn: func(string, []string, time.Time) ([]*ServerKeys, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, ErrFetch
		}
		return []*ServerKeys{answer}, nil
	}}
	r := &Ring{Now: c.Now, Sources: []Source{src}, MinRefetch: -1}
	ctx := context.Background()
	// Nothing held: fetch.
	sk, err := r.ServerKeys(ctx, "n.example", c.Now())
	if err != nil || sk != short || src.calls.Load() != 1 {
		t.Fatalf("first: %v, %d calls", err, src.calls.Load())
	}
	// Held and valid long enough: no fetch.
	if sk, _ = r.ServerKeys(ctx, "n.example", time.UnixMilli(now+500)); sk != short || src.calls.Load() != 1 {
		t.Errorf("cached answer not used")
	}
	// Asked for more than held: refetch, newer response returned.
	mu.Lock()
	answer = long
	mu.Unlock()
	if sk, _ = r.ServerKeys(ctx, "n.example", time.UnixMilli(now+5000)); sk != long || src.calls.Load() != 2 {
		t.Errorf("refetch: got %v after %d calls", sk == long, src.calls.Load())
	}
	// Origin offline and nothing fresh enough: the last response is served.
	mu.Lock()
	fail = true
	mu.Unlock()
	if sk, err = r.ServerKeys(ctx, "n.example", time.UnixMilli(now+2e9)); err != nil || sk != long {
		t.Errorf("offline origin: %v, %v", sk == long, err)
	}
	// Never seen and offline: error.
	if sk, err = r.ServerKeys(ctx, "gone.example", c.Now()); sk != nil || !errors.Is(err, ErrFetch) {
		t.Errorf("unknown offline server: %v, %v", sk, err)
	}
}

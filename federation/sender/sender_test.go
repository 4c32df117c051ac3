package sender

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// memLog is a Log in memory: PDUs per destination, positions increasing.
type memLog struct {
	mu   sync.Mutex
	pos  uint64
	pdus map[string][]PDU
	fail error
}

func (l *memLog) add(dest string, n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pdus == nil {
		l.pdus = map[string][]PDU{}
	}
	var ids []string
	for range n {
		l.pos++
		id := fmt.Sprintf("$ev%d", l.pos)
		ids = append(ids, id)
		l.pdus[dest] = append(l.pdus[dest], PDU{Pos: l.pos, JSON: json.RawMessage(fmt.Sprintf(`{"event_id":%q}`, id))})
	}
	return ids
}

func (l *memLog) Next(_ context.Context, dest string, after uint64, max int) ([]PDU, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return nil, l.fail
	}
	var out []PDU
	for _, p := range l.pdus[dest] {
		if p.Pos > after && len(out) < max {
			out = append(out, p)
		}
	}
	return out, nil
}

// memStore is a PositionStore in memory that records every Save.
type memStore struct {
	mu    sync.Mutex
	pos   map[string]Position
	saves []Position
}

func (s *memStore) Load(_ context.Context, dest string) (Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos[dest], nil
}

func (s *memStore) Save(_ context.Context, dest string, p Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pos == nil {
		s.pos = map[string]Position{}
	}
	s.pos[dest] = p
	s.saves = append(s.saves, p)
	return nil
}

func (s *memStore) get(dest string) Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos[dest]
}

// attempt is one /send request a fake destination saw.
type attempt struct {
	txnID  string
	origin string
	pdus   []string // event IDs
	edus   int
	status int
}

// dest is a fake destination: a TLS server on 127.0.0.1 behind the
// federation authentication middleware that records /send requests and
// answers with status (200 when 0), or holds requests while hold is set.
type dest struct {
	t    *testing.T
	name string
	srv  *httptest.Server

	mu       sync.Mutex
	attempts []attempt
	status   func(n int) int // status for the n-th attempt (0-based)
	hold     chan struct{}   // when not nil, requests wait for it to close
}

var ourKey = func() *signing.Key {
	k, err := signing.NewKey("ed25519:1", ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		panic(err)
	}
	return k
}()

type keyTable map[string]ed25519.PublicKey

func (k keyTable) VerifyKey(_ context.Context, server, keyID string, _ time.Time) (ed25519.PublicKey, error) {
	if p, ok := k[server+" "+keyID]; ok {
		return p, nil
	}
	return nil, signing.ErrUnknownKey
}

func newDest(t *testing.T, name string) *dest {
	d := &dest{t: t, name: name}
	auth := &federation.Authenticator{ServerName: name, Keys: keyTable{"us.example ed25519:1": ourKey.Public()}, Logger: slog.New(slog.DiscardHandler)}
	d.srv = httptest.NewTLSServer(auth.Wrap(http.HandlerFunc(d.serve)))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *dest) serve(w http.ResponseWriter, r *http.Request) {
	var txn federation.Transaction
	if err := json.NewDecoder(r.Body).Decode(&txn); err != nil {
		http.Error(w, `{"errcode":"M_NOT_JSON"}`, 400)
		return
	}
	a := attempt{txnID: r.PathValue("txn"), origin: txn.Origin, edus: len(txn.EDUs)}
	if a.txnID == "" {
		a.txnID = r.URL.Path[len("/_matrix/federation/v1/send/"):]
	}
	for _, p := range txn.PDUs {
		var ev struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(p, &ev)
		a.pdus = append(a.pdus, ev.EventID)
	}
	d.mu.Lock()
	n := len(d.attempts)
	st := 200
	if d.status != nil {
		st = d.status(n)
	}
	a.status = st
	d.attempts = append(d.attempts, a)
	hold := d.hold
	d.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st)
	if st != 200 {
		fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"test failure"}`)
		return
	}
	res := map[string]any{}
	for _, id := range a.pdus {
		res[id] = map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"pdus": res})
}

func (d *dest) snapshot() []attempt {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]attempt(nil), d.attempts...)
}

// delivered returns the event IDs of acknowledged attempts, in order.
func (d *dest) delivered() []string {
	var out []string
	for _, a := range d.snapshot() {
		if a.status == 200 {
			out = append(out, a.pdus...)
		}
	}
	return out
}

// router is a transport that sends matrix-federation://name requests to
// the fake destination's TLS server, or to a closed port for names marked
// down.
type router struct {
	mu    sync.Mutex
	dests map[string]string // name -> host:port
	rt    *http.Transport
}

func newRouter() *router {
	return &router{dests: map[string]string{}, rt: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func (r *router) set(name, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dests[name] = addr
}

func (r *router) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	addr, ok := r.dests[req.URL.Host]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("router: unknown destination %s", req.URL.Host)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme = "https"
	out.URL.Host = addr
	out.Host = req.URL.Host
	return r.rt.RoundTrip(out)
}

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type fixture struct {
	log    *memLog
	store  *memStore
	router *router
	client *federation.Client
}

func newFixture() *fixture {
	r := newRouter()
	return &fixture{log: &memLog{}, store: &memStore{}, router: r,
		client: &federation.Client{ServerName: "us.example", Key: ourKey, HTTPClient: &http.Client{Transport: r, Timeout: 10 * time.Second}}}
}

func (f *fixture) sender(t *testing.T, mod func(*Options)) *Sender {
	opts := Options{ServerName: "us.example", Transport: f.client, Log: f.log, Store: f.store,
		Backoff: &federation.Backoff{Min: 5 * time.Millisecond, Max: 40 * time.Millisecond}}
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestBatchingLimits(t *testing.T) {
	t.Parallel()
	f := newFixture()
	d := newDest(t, "a.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	hold := make(chan struct{})
	d.hold = hold
	s := f.sender(t, nil)
	want := f.log.add(d.name, 1)
	if err := s.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	// The first transaction is held; meanwhile 120 PDUs and 250 EDUs queue.
	eventually(t, "the first attempt", func() bool { return len(d.snapshot()) == 1 })
	want = append(want, f.log.add(d.name, 120)...)
	for i := range 250 {
		if err := s.SendEDU(d.name, json.RawMessage(fmt.Sprintf(`{"edu_type":"m.typing","content":{"n":%d}}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.hold = nil
	d.mu.Unlock()
	close(hold)
	eventually(t, "every PDU and EDU", func() bool {
		st := s.Stats()
		return st.PDUs == 121 && st.EDUs == 250
	})
	got := d.delivered()
	if !equal(got, want) {
		t.Fatalf("delivered %d PDUs, not the %d queued in order", len(got), len(want))
	}
	full, fullEDU := false, false
	for _, a := range d.snapshot() {
		if len(a.pdus) > MaxPDUsPerTransaction || a.edus > MaxEDUsPerTransaction {
			t.Fatalf("transaction %s has %d PDUs and %d EDUs", a.txnID, len(a.pdus), a.edus)
		}
		if a.origin != "us.example" {
			t.Fatalf("origin %q", a.origin)
		}
		full = full || len(a.pdus) == MaxPDUsPerTransaction
		fullEDU = fullEDU || a.edus == MaxEDUsPerTransaction
	}
	if !full || !fullEDU {
		t.Fatalf("no full batch: PDUs %v, EDUs %v", full, fullEDU)
	}
	if p := f.store.get(d.name); p.Acked != 121 || p.TxnID != "" {
		t.Fatalf("stored position %+v, want acked 121", p)
	}
}

// TestRetryReusesTxnID: a transaction that fails is resent with the same ID
// and the same PDUs; the next one gets a new ID. 4xx answers count as
// failures too.
func TestRetryReusesTxnID(t *testing.T) {
	t.Parallel()
	f := newFixture()
	d := newDest(t, "b.example")
	d.status = func(n int) int {
		switch n {
		case 0:
			return 500
		case 1:
			return 400
		case 2:
			return 429
		}
		return 200
	}
	f.router.set(d.name, d.srv.Listener.Addr().String())
	s := f.sender(t, nil)
	first := f.log.add(d.name, 3)
	if err := s.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first transaction acknowledged", func() bool { return s.Stats().Transactions == 1 })
	second := f.log.add(d.name, 2)
	if err := s.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second transaction", func() bool { return s.Stats().Transactions == 2 })
	at := d.snapshot()
	if len(at) != 5 {
		t.Fatalf("%d attempts, want 4 for the first transaction and 1 for the second", len(at))
	}
	for i := 1; i < 4; i++ {
		if at[i].txnID != at[0].txnID || !equal(at[i].pdus, first) {
			t.Fatalf("retry %d: txn %s %v, want %s %v", i, at[i].txnID, at[i].pdus, at[0].txnID, first)
		}
	}
	if at[4].txnID == at[0].txnID || !equal(at[4].pdus, second) {
		t.Fatalf("second transaction: %s %v", at[4].txnID, at[4].pdus)
	}
	if st := s.Stats(); st.Failures != 3 {
		t.Fatalf("failures %d, want 3", st.Failures)
	}
}

// TestDownDestination: a destination that refuses connections gets every
// PDU, in order and once, when it comes back.
func TestDownDestination(t *testing.T) {
	t.Parallel()
	f := newFixture()
	f.router.set("c.example", closedAddr(t))
	s := f.sender(t, nil)
	want := f.log.add("c.example", 90)
	if err := s.Notify("c.example"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed attempts", func() bool { return s.Stats().Failures >= 3 })
	if p := f.store.get("c.example"); p.Acked != 0 || p.TxnID == "" {
		t.Fatalf("position while down: %+v", p)
	}
	d := newDest(t, "c.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	if err := s.Wake(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all 90 PDUs", func() bool { return len(d.delivered()) == 90 })
	if got := d.delivered(); !equal(got, want) {
		t.Fatalf("delivered %v", got)
	}
	if n := len(d.snapshot()); n != 2 {
		t.Fatalf("%d transactions for 90 PDUs, want 2 (50 + 40)", n)
	}
}

// TestRestartResumes: a Sender closed while a transaction is in flight is
// replaced by a new one on the same store; it resends that transaction
// under the same ID with the same PDUs, then sends the rest; acknowledged
// PDUs are never sent again.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	f := newFixture()
	d := newDest(t, "d.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	s1 := f.sender(t, nil)
	acked := f.log.add(d.name, 4)
	if err := s1.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first transaction", func() bool { return s1.Stats().Transactions == 1 })

	hold := make(chan struct{})
	d.mu.Lock()
	d.hold = hold
	d.mu.Unlock()
	inflight := f.log.add(d.name, 5)
	if err := s1.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the held attempt", func() bool { return len(d.snapshot()) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s1.Notify(d.name); !errors.Is(err, ErrClosed) {
		t.Fatalf("Notify after Close: %v", err)
	}
	pending := f.store.get(d.name)
	if pending.Acked != 4 || pending.TxnLast != 9 || pending.TxnID != d.snapshot()[1].txnID {
		t.Fatalf("stored position %+v", pending)
	}
	d.mu.Lock()
	d.hold = nil
	d.mu.Unlock()
	close(hold)

	later := f.log.add(d.name, 3)
	s2 := f.sender(t, nil)
	if err := s2.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resumed transactions", func() bool { return s2.Stats().Transactions == 2 })
	at := d.snapshot()
	if len(at) != 4 {
		t.Fatalf("%d attempts, want 4", len(at))
	}
	if at[2].txnID != pending.TxnID || !equal(at[2].pdus, inflight) {
		t.Fatalf("resent %s %v, want %s %v", at[2].txnID, at[2].pdus, pending.TxnID, inflight)
	}
	if !equal(at[3].pdus, later) || at[3].txnID == pending.TxnID {
		t.Fatalf("after the resend: %s %v", at[3].txnID, at[3].pdus)
	}
	for _, a := range at[2:] {
		for _, id := range a.pdus {
			for _, old := range acked {
				if id == old {
					t.Fatalf("acknowledged PDU %s sent again", id)
				}
			}
		}
	}
	if p := f.store.get(d.name); p.Acked != 12 || p.TxnID != "" {
		t.Fatalf("final position %+v", p)
	}
}

// TestEDUQueueBounded: EDUs beyond MaxQueuedEDUs are dropped oldest first
// and counted.
func TestEDUQueueBounded(t *testing.T) {
	t.Parallel()
	f := newFixture()
	d := newDest(t, "e.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	hold := make(chan struct{})
	d.hold = hold
	s := f.sender(t, func(o *Options) { o.MaxQueuedEDUs = 5 })
	if err := s.SendEDU(d.name, json.RawMessage(`{"edu_type":"m.typing","content":{}}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the held attempt", func() bool { return len(d.snapshot()) == 1 })
	for range 20 {
		if err := s.SendEDU(d.name, json.RawMessage(`{"edu_type":"m.typing","content":{}}`)); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.DroppedEDUs != 15 {
		t.Fatalf("dropped %d, want 15", st.DroppedEDUs)
	}
	d.mu.Lock()
	d.hold = nil
	d.mu.Unlock()
	close(hold)
	eventually(t, "the queued EDUs", func() bool { return s.Stats().EDUs == 6 })
	if at := d.snapshot(); len(at) != 2 || at[1].edus != 5 {
		t.Fatalf("attempts %+v", at)
	}
}

// TestLogErrors: a Log that fails, or returns positions out of order, is
// counted and retried; nothing is sent meanwhile.
func TestLogErrors(t *testing.T) {
	t.Parallel()
	f := newFixture()
	d := newDest(t, "f.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	f.log.fail = errors.New("disk on fire")
	s := f.sender(t, nil)
	want := f.log.add(d.name, 2)
	if err := s.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "log errors", func() bool { return s.Stats().StoreErrors >= 2 })
	if len(d.snapshot()) != 0 {
		t.Fatal("sent something while the log failed")
	}
	f.log.mu.Lock()
	f.log.fail = nil
	f.log.mu.Unlock()
	eventually(t, "delivery after the log recovers", func() bool { return equal(d.delivered(), want) })

	// A log that goes backwards is refused.
	bad := &badLog{}
	s2 := f.sender(t, func(o *Options) { o.Log = bad; o.Store = &memStore{} })
	if err := s2.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the order error", func() bool { return s2.Stats().StoreErrors >= 1 })
	if n := len(d.snapshot()); n != 1 {
		t.Fatalf("%d attempts, want only the first sender's", n)
	}
}

type badLog struct{}

func (badLog) Next(context.Context, string, uint64, int) ([]PDU, error) {
	return []PDU{{Pos: 5, JSON: json.RawMessage(`{}`)}, {Pos: 3, JSON: json.RawMessage(`{}`)}}, nil
}

func TestNewRequiresParts(t *testing.T) {
	if _, err := New(Options{ServerName: "x"}); !errors.Is(err, ErrBadOptions) {
		t.Fatal("New without Transport, Log and Store succeeded")
	}
	if _, err := New(Options{Transport: &federation.Client{}, Log: &memLog{}, Store: &memStore{}}); !errors.Is(err, ErrBadOptions) {
		t.Fatal("New without ServerName succeeded")
	}
}

// TestIdleDestinationsEnd: after delivery every destination's goroutine
// ends and its state is released.
func TestIdleDestinationsEnd(t *testing.T) {
	t.Parallel()
	f := newFixture()
	s := f.sender(t, nil)
	const n = 12
	for i := range n {
		name := fmt.Sprintf("g%d.example", i)
		d := newDest(t, name)
		f.router.set(name, d.srv.Listener.Addr().String())
		f.log.add(name, 2)
		if err := s.Notify(name); err != nil {
			t.Fatal(err)
		}
		if err := s.SendEDU(name, json.RawMessage(`{"edu_type":"m.typing","content":{}}`)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all destinations served", func() bool { return s.Stats().PDUs == 2*n && s.Stats().EDUs == n })
	eventually(t, "idle destinations released", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.dests) == 0
	})
}

// flakyStore fails Saves of an acknowledged position while failAcks is
// set, as a crash between the destination's 200 and the write would
// leave things.
type flakyStore struct {
	memStore
	mu       sync.Mutex
	failAcks bool
}

func (f *flakyStore) Save(ctx context.Context, dest string, p Position) error {
	f.mu.Lock()
	fail := f.failAcks && p.TxnID == ""
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.memStore.Save(ctx, dest, p)
}

// TestCrashAfterAck: the destination acknowledged a transaction but its
// position could not be stored before the process stopped. The next
// process resends that transaction under the same ID (receivers
// deduplicate by origin and transaction ID), not under a new one, and
// nothing after it is lost.
func TestCrashAfterAck(t *testing.T) {
	t.Parallel()
	f := newFixture()
	store := &flakyStore{failAcks: true}
	d := newDest(t, "h.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	s1 := f.sender(t, func(o *Options) { o.Store = store })
	first := f.log.add(d.name, 3)
	if err := s1.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed position save", func() bool { return s1.Stats().StoreErrors >= 1 })
	if err := s1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	pending := store.get(d.name)
	if pending.TxnID == "" || pending.Acked != 0 {
		t.Fatalf("stored %+v", pending)
	}
	store.mu.Lock()
	store.failAcks = false
	store.mu.Unlock()
	later := f.log.add(d.name, 2)
	s2 := f.sender(t, func(o *Options) { o.Store = store })
	if err := s2.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the resend and the rest", func() bool { return s2.Stats().Transactions == 2 })
	at := d.snapshot()
	if len(at) != 3 || at[0].txnID != pending.TxnID || at[1].txnID != pending.TxnID || !equal(at[1].pdus, first) || !equal(at[2].pdus, later) {
		t.Fatalf("attempts %+v", at)
	}
	if p := store.get(d.name); p.Acked != 5 || p.TxnID != "" {
		t.Fatalf("final %+v", p)
	}
}

// TestRequestTimeout: a destination that never answers is given up on
// after RequestTimeout and retried with the same transaction.
func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	f := newFixture()
	d := newDest(t, "i.example")
	f.router.set(d.name, d.srv.Listener.Addr().String())
	hold := make(chan struct{})
	d.hold = hold
	s := f.sender(t, func(o *Options) { o.RequestTimeout = 400 * time.Millisecond })
	f.log.add(d.name, 1)
	if err := s.Notify(d.name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two timed-out attempts", func() bool { return len(d.snapshot()) >= 2 && s.Stats().Failures >= 1 })
	at := d.snapshot()
	if at[0].txnID != at[1].txnID {
		t.Fatalf("retry under another ID: %s, %s", at[0].txnID, at[1].txnID)
	}
	d.mu.Lock()
	d.hold = nil
	d.mu.Unlock()
	close(hold)
	eventually(t, "delivery", func() bool { return s.Stats().Transactions == 1 })
}

// ackTransport acknowledges every transaction at once, in process.
type ackTransport struct{}

func (ackTransport) SendTransaction(context.Context, string, string, federation.Transaction) (map[string]json.RawMessage, error) {
	return nil, nil
}

// BenchmarkQueue measures the sender's own cost per PDU (reading the
// Log, batching, two position writes per transaction) with a transport
// that acknowledges at once.
func BenchmarkQueue(b *testing.B) {
	log := &memLog{}
	log.add("x.example", 5000)
	b.ReportAllocs()
	for b.Loop() {
		store := &memStore{}
		done := make(chan struct{})
		s, err := New(Options{ServerName: "us.example", Transport: ackTransport{}, Log: log, Store: store,
			OnDelivered: func(string, string, []PDU, map[string]json.RawMessage) {
				if store.get("x.example").Acked == 5000 {
					close(done)
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Notify("x.example")
		<-done
		_ = s.Close(context.Background())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5000, "ns/PDU")
}

package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomatrixlib/gomatrixlib/federation"
)

// Limits of one transaction (server-server API, "Transactions").
const (
	MaxPDUsPerTransaction = 50
	MaxEDUsPerTransaction = 100
)

// Defaults of [Options].
const (
	DefaultMaxQueuedEDUs  = 1000
	DefaultRequestTimeout = 2 * time.Minute
)

// PDU is one event queued for a destination, at its position in the
// caller's [Log].
type PDU struct {
	// Pos is the entry's position; positions of one destination increase.
	Pos uint64
	// JSON is the event as sent over federation.
	JSON json.RawMessage
}

// Log gives the PDUs to send to a destination. The sender calls it from
// the destination's goroutine only.
type Log interface {
	// Next returns, in increasing position order, at most max PDUs for
	// destination whose position is greater than after. An empty result
	// means there is nothing more now.
	Next(ctx context.Context, destination string, after uint64, max int) ([]PDU, error)
}

// Position is what the sender records for a destination.
type Position struct {
	// Acked: the destination acknowledged every PDU up to this position.
	Acked uint64
	// TxnID is the transaction sent and not yet acknowledged, or "".
	TxnID string
	// TxnLast is the position of its last PDU.
	TxnLast uint64
}

// PositionStore keeps each destination's [Position] durably. Save must be
// durable when it returns. A destination never saved has the zero
// Position.
type PositionStore interface {
	Load(ctx context.Context, destination string) (Position, error)
	Save(ctx context.Context, destination string, pos Position) error
}

// Transport sends a transaction; *federation.Client implements it.
type Transport interface {
	SendTransaction(ctx context.Context, destination, txnID string, txn federation.Transaction) (map[string]json.RawMessage, error)
}

// Options configure a [Sender]. Transport, Log and Store are required;
// zero values of the rest mean the default.
type Options struct {
	// ServerName is our server name, the transactions' origin.
	ServerName string
	// Transport sends transactions (a *federation.Client).
	Transport Transport
	// Log gives the PDUs to send.
	Log Log
	// Store keeps the queue positions.
	Store PositionStore
	// Backoff decides when a failing destination is tried again. Nil: a
	// federation.Backoff with its defaults (5 s doubling to 1 h).
	Backoff *federation.Backoff
	// MaxQueuedEDUs bounds the EDUs waiting per destination. Zero:
	// DefaultMaxQueuedEDUs.
	MaxQueuedEDUs int
	// RequestTimeout bounds each attempt to send a transaction (a
	// destination that accepts the connection and never answers). Zero:
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Now is the clock (transaction timestamps and IDs). Nil: time.Now.
	Now func() time.Time
	// OnDelivered, if set, is called after a destination accepted a
	// transaction, with the per-PDU results of its answer (an entry with
	// an "error" key is a PDU the destination refused). It runs on the
	// destination's goroutine.
	OnDelivered func(destination, txnID string, pdus []PDU, results map[string]json.RawMessage)
	// Logger receives failures. Nil: discard.
	Logger *slog.Logger
}

// Stats are counters since the Sender was made.
type Stats struct {
	Transactions uint64 // transactions acknowledged
	PDUs         uint64 // PDUs in them
	EDUs         uint64 // EDUs in them
	Failures     uint64 // failed attempts
	DroppedEDUs  uint64 // EDUs dropped because a queue was full
	StoreErrors  uint64 // failed Log or Store calls
}

// Sentinel errors.
var (
	// ErrClosed is returned by calls made after Close.
	ErrClosed = errors.New("sender: closed")
	// ErrBadOptions is returned by New for missing required options.
	ErrBadOptions = errors.New("sender: bad options")
)

// Sender delivers PDUs and EDUs to destinations. Make one with [New].
type Sender struct {
	opts    Options
	backoff *federation.Backoff
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	closed bool
	dests  map[string]*destination
	txnSeq atomic.Uint64
	stats  struct {
		txns, pdus, edus, failures, dropped, storeErrs atomic.Uint64
	}
}

// destination is the in-memory state of one destination's queue.
type destination struct {
	name    string
	wake    chan struct{} // capacity 1
	running bool          // guarded by Sender.mu
	dirty   bool          // guarded by Sender.mu: Notify since the last read
	edus    []json.RawMessage
}

// New returns a Sender. It starts no goroutine until a destination has
// work. Missing required options give an error wrapping [ErrBadOptions].
func New(opts Options) (*Sender, error) {
	if opts.Transport == nil || opts.Log == nil || opts.Store == nil {
		return nil, fmt.Errorf("%w: Transport, Log and Store are required", ErrBadOptions)
	}
	if opts.ServerName == "" {
		return nil, fmt.Errorf("%w: ServerName is required", ErrBadOptions)
	}
	if opts.MaxQueuedEDUs <= 0 {
		opts.MaxQueuedEDUs = DefaultMaxQueuedEDUs
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := opts.Backoff
	if b == nil {
		b = &federation.Backoff{Now: opts.Now}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{opts: opts, backoff: b, ctx: ctx, cancel: cancel, dests: map[string]*destination{}}, nil
}

// Notify tells the sender that the Log has new PDUs for destination (or,
// after a restart, may have unsent ones): its goroutine starts if it is
// not running. Cheap; call it after each write to the Log, and once per
// destination with pending PDUs at startup.
func (s *Sender) Notify(destination string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.kickLocked(destination)
	return nil
}

// SendEDU queues an EDU ({"edu_type": ..., "content": ...}) for
// destination. When the queue is full the oldest EDU is dropped.
func (s *Sender) SendEDU(destination string, edu json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	d := s.destLocked(destination)
	if len(d.edus) >= s.opts.MaxQueuedEDUs {
		n := len(d.edus) - s.opts.MaxQueuedEDUs + 1
		d.edus = append(d.edus[:0], d.edus[n:]...)
		s.stats.dropped.Add(uint64(n))
	}
	d.edus = append(d.edus, edu)
	s.kickLocked(destination)
	return nil
}

// Wake ends destination's backoff and retries it now; call it when the
// destination shows it is up (it sent us a request).
func (s *Sender) Wake(destination string) error {
	s.backoff.Record(destination, nil)
	return s.Notify(destination)
}

// Close stops every destination's goroutine, cancelling requests in
// flight, and waits for them or for ctx. Positions already stored stay:
// a new Sender on the same Store resumes.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the counters.
func (s *Sender) Stats() Stats {
	return Stats{
		Transactions: s.stats.txns.Load(),
		PDUs:         s.stats.pdus.Load(),
		EDUs:         s.stats.edus.Load(),
		Failures:     s.stats.failures.Load(),
		DroppedEDUs:  s.stats.dropped.Load(),
		StoreErrors:  s.stats.storeErrs.Load(),
	}
}

func (s *Sender) destLocked(name string) *destination {
	d := s.dests[name]
	if d == nil {
		d = &destination{name: name, wake: make(chan struct{}, 1)}
		s.dests[name] = d
	}
	return d
}

// kickLocked marks destination as having work and makes sure its
// goroutine runs.
func (s *Sender) kickLocked(name string) {
	d := s.destLocked(name)
	d.dirty = true
	if d.running {
		select {
		case d.wake <- struct{}{}:
		default:
		}
		return
	}
	d.running = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(d)
	}()
}

// batch is a transaction being delivered.
type batch struct {
	id   string
	pdus []PDU
	edus []json.RawMessage
	last uint64 // position of the last PDU (or the acked position)
}

// takeEDUs removes up to MaxEDUsPerTransaction queued EDUs.
func (s *Sender) takeEDUs(d *destination) []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(d.edus), MaxEDUsPerTransaction)
	if n == 0 {
		return nil
	}
	out := append([]json.RawMessage(nil), d.edus[:n]...)
	d.edus = append(d.edus[:0], d.edus[n:]...)
	if len(d.edus) == 0 && cap(d.edus) > 4*MaxEDUsPerTransaction {
		d.edus = nil
	}
	return out
}

// idle ends the goroutine if nothing arrived since the last read.
func (s *Sender) idle(d *destination) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.dirty || len(d.edus) > 0 {
		return false
	}
	d.running = false
	delete(s.dests, d.name)
	return true
}

func (s *Sender) newTxnID() string {
	return strconv.FormatInt(s.opts.Now().UnixMilli(), 10) + "-" + strconv.FormatUint(s.txnSeq.Add(1), 10)
}

// run is a destination's goroutine.
func (s *Sender) run(d *destination) {
	ctx := s.ctx
	log := s.opts.Logger.With("destination", d.name)
	var pos Position
	loaded := false
	var cur *batch
	for ctx.Err() == nil {
		if !loaded {
			p, err := s.opts.Store.Load(ctx, d.name)
			if err != nil {
				s.storeFailed(ctx, d, log, "loading the queue position", err)
				continue
			}
			pos, loaded = p, true
		}
		if cur == nil {
			b, err := s.nextBatch(ctx, d, &pos)
			if err != nil {
				s.storeFailed(ctx, d, log, "reading the queue", err)
				continue
			}
			if b == nil {
				if s.idle(d) {
					return
				}
				continue
			}
			cur = b
		}
		if !s.waitReady(ctx, d) {
			return
		}
		txn := federation.Transaction{Origin: s.opts.ServerName, OriginServerTS: s.opts.Now().UnixMilli(), EDUs: cur.edus}
		txn.PDUs = make([]json.RawMessage, len(cur.pdus))
		for i, p := range cur.pdus {
			txn.PDUs[i] = p.JSON
		}
		reqCtx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
		results, err := s.opts.Transport.SendTransaction(reqCtx, d.name, cur.id, txn)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.stats.failures.Add(1)
			// Every failure of /send counts, including 4xx answers
			// (which federation.Backoff alone treats as "reachable").
			s.backoff.Record(d.name, fmt.Errorf("sender: transaction %s: %s", cur.id, err))
			log.Info("sender: transaction failed", "txn", cur.id, "pdus", len(cur.pdus), "edus", len(cur.edus), "err", err)
			continue
		}
		s.backoff.Record(d.name, nil)
		if len(cur.pdus) > 0 {
			next := Position{Acked: cur.last}
			for {
				err := s.opts.Store.Save(ctx, d.name, next)
				if err == nil {
					break
				}
				// The destination has the PDUs; until the position is
				// saved a restart would resend them (with the same
				// transaction ID, which receivers deduplicate).
				s.storeFailed(ctx, d, log, "saving the acknowledged position", err)
				if ctx.Err() != nil {
					return
				}
			}
			pos = next
		}
		s.stats.txns.Add(1)
		s.stats.pdus.Add(uint64(len(cur.pdus)))
		s.stats.edus.Add(uint64(len(cur.edus)))
		for id, r := range results {
			var body struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(r, &body) == nil && body.Error != "" {
				log.Info("sender: destination refused a PDU", "txn", cur.id, "event_id", id, "error", body.Error)
			}
		}
		if s.opts.OnDelivered != nil {
			s.opts.OnDelivered(d.name, cur.id, cur.pdus, results)
		}
		cur = nil
	}
}

// nextBatch builds the next transaction: the one in flight before a
// restart if there was one, else new PDUs from the Log and queued EDUs.
// nil means there is nothing to send.
func (s *Sender) nextBatch(ctx context.Context, d *destination, pos *Position) (*batch, error) {
	s.mu.Lock()
	d.dirty = false
	s.mu.Unlock()
	if pos.TxnID != "" {
		// Resend what was in flight, under its ID: the PDUs after Acked up
		// to TxnLast.
		pdus, err := s.opts.Log.Next(ctx, d.name, pos.Acked, MaxPDUsPerTransaction)
		if err != nil {
			return nil, err
		}
		n := 0
		for n < len(pdus) && pdus[n].Pos <= pos.TxnLast {
			n++
		}
		return &batch{id: pos.TxnID, pdus: pdus[:n:n], last: pos.TxnLast}, nil
	}
	pdus, err := s.opts.Log.Next(ctx, d.name, pos.Acked, MaxPDUsPerTransaction)
	if err != nil {
		return nil, err
	}
	if len(pdus) > MaxPDUsPerTransaction {
		pdus = pdus[:MaxPDUsPerTransaction]
	}
	for i, p := range pdus {
		if p.Pos <= pos.Acked || (i > 0 && p.Pos <= pdus[i-1].Pos) {
			return nil, fmt.Errorf("sender: the log returned position %d after %d (positions must increase)", p.Pos, max(pos.Acked, pdus[max(i-1, 0)].Pos))
		}
	}
	edus := s.takeEDUs(d)
	if len(pdus) == 0 && len(edus) == 0 {
		return nil, nil
	}
	b := &batch{id: s.newTxnID(), pdus: pdus, edus: edus, last: pos.Acked}
	if len(pdus) > 0 {
		b.last = pdus[len(pdus)-1].Pos
		next := Position{Acked: pos.Acked, TxnID: b.id, TxnLast: b.last}
		if err := s.opts.Store.Save(ctx, d.name, next); err != nil {
			// Put the EDUs back in front so that they are not lost.
			s.requeueEDUs(d, edus)
			return nil, err
		}
		*pos = next
	}
	return b, nil
}

func (s *Sender) requeueEDUs(d *destination, edus []json.RawMessage) {
	if len(edus) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d.edus = append(edus, d.edus...)
	if over := len(d.edus) - s.opts.MaxQueuedEDUs; over > 0 {
		d.edus = d.edus[over:]
		s.stats.dropped.Add(uint64(over))
	}
}

// waitReady waits until the backoff allows destination, or a Wake. It
// returns false when the Sender closes.
func (s *Sender) waitReady(ctx context.Context, d *destination) bool {
	for {
		ok, until := s.backoff.Ready(d.name)
		if ok {
			return true
		}
		wait := until.Sub(s.opts.Now())
		if wait <= 0 {
			wait = time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		case <-d.wake:
			t.Stop()
		}
	}
}

// storeFailed counts a failed Log or Store call and waits before the next
// try, using the destination's backoff as the delay.
func (s *Sender) storeFailed(ctx context.Context, d *destination, log *slog.Logger, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	s.stats.storeErrs.Add(1)
	log.Error("sender: "+what, "err", err)
	s.backoff.Record(d.name, fmt.Errorf("sender: %s: %s", what, err))
	s.waitReady(ctx, d)
}

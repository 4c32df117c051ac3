package signing

import (
	"context"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/internal/ed25519batch"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/tidwall/gjson"
)

// VerifyOptions tunes [VerifyEventsWithOptions]. The zero value checks
// every signature with crypto/ed25519, exactly as [VerifyEvent] does.
type VerifyOptions struct {
	// Batch checks ed25519 signatures together with a cofactored batch
	// equation: the signatures cost about 0.3 of the CPU of one-by-one
	// checks, whole events about 0.4 (BenchmarkVerifyEvents1000).
	// Results equal [VerifyEvent]'s for every signature but one kind: a
	// signature whose R the key's holder built with a small-order
	// component. The batch accepts it; crypto/ed25519, libsodium (and so
	// Synapse) and the default mode reject it. A server that decides
	// which events exist in a room should leave Batch off, or a malicious
	// server could make it accept events that other servers reject; it
	// suits bulk checks whose verdict does not feed room consensus (a
	// bridge, an audit, history already accepted by others).
	Batch bool
	// Rand supplies the batch's random weights; nil means crypto/rand.
	// Workers read it under a lock.
	Rand io.Reader
}

// VerifyEvents runs [VerifyEvent] on many events of one room version at
// once, spread over GOMAXPROCS goroutines, and returns the result for each
// event at the same index (nil for a good event).
func VerifyEvents(ctx context.Context, rules roomversion.Rules, events [][]byte, keys KeyLookup) []error {
	return VerifyEventsWithOptions(ctx, rules, events, keys, VerifyOptions{})
}

// VerifyEventsWithOptions is [VerifyEvents] with options. With opts.Batch,
// an event whose signatures or content hash do not pass on the fast path
// is checked again with [VerifyEvent], so every error is the one
// VerifyEvent gives.
func VerifyEventsWithOptions(ctx context.Context, rules roomversion.Rules, events [][]byte, keys KeyLookup, opts VerifyOptions) []error {
	out := make([]error, len(events))
	if opts.Rand != nil {
		opts.Rand = &lockedReader{r: opts.Rand}
	}
	run := func(start, end int) {
		if opts.Batch {
			verifyBatch(ctx, rules, events[start:end], keys, out[start:end], opts.Rand)
			return
		}
		for i := start; i < end; i++ {
			if err := ctx.Err(); err != nil {
				out[i] = err
				continue
			}
			out[i] = VerifyEvent(ctx, rules, events[i], keys)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(events))
	if workers <= 1 {
		run(0, len(events))
		return out
	}
	// Workers take chunks from a shared counter, so one that is slowed
	// down (by the host, a slow key lookup) does not hold up the rest.
	// A chunk is large enough to fill a few ed25519 batches.
	chunk := min(256, (len(events)+workers-1)/workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= len(events) {
					return
				}
				run(start, min(start+chunk, len(events)))
			}
		})
	}
	wg.Wait()
	return out
}

// lockedReader shares one reader between workers.
type lockedReader struct {
	mu sync.Mutex
	r  io.Reader
}

func (l *lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// verifyBatch checks events with one batch verification of a signature
// per required server; events that fail anything go through VerifyEvent.
func verifyBatch(ctx context.Context, rules roomversion.Rules, events [][]byte, keys KeyLookup, out []error, rnd io.Reader) {
	slow := make([]bool, len(events))
	var entries []ed25519batch.Entry
	var owner []int // event index of each entry
	for i, ev := range events {
		if err := ctx.Err(); err != nil {
			out[i] = err
			continue
		}
		n := len(entries)
		var ok bool
		entries, ok = batchEntries(ctx, rules, ev, keys, entries)
		if !ok {
			entries = entries[:n]
			slow[i] = true
			continue
		}
		for range len(entries) - n {
			owner = append(owner, i)
		}
	}
	good, err := ed25519batch.Verify(entries, rnd)
	for j := range entries {
		if err != nil || !good[j] {
			slow[owner[j]] = true
		}
	}
	for i, ev := range events {
		if slow[i] && out[i] == nil {
			out[i] = VerifyEvent(ctx, rules, ev, keys)
		}
	}
}

// batchEntries appends, for each server that must sign ev, every ed25519
// signature made with a key that keys returns. ok is false when a server
// has no such signature, one of them cannot be decoded, the content hash
// does not match or the event is malformed; VerifyEvent then gives the
// error.
func batchEntries(ctx context.Context, rules roomversion.Rules, ev []byte, keys KeyLookup, entries []ed25519batch.Entry) (_ []ed25519batch.Entry, ok bool) {
	p, contentHash, err := prepareFast(rules, ev)
	if err != nil || hashing.MatchContentHash(ev, contentHash) != nil {
		return entries, false
	}
	for _, server := range p.signers {
		found, bad := false, false
		serverSignatures(p.sigs, server).ForEach(func(k, v gjson.Result) bool {
			if !strings.HasPrefix(k.Str, "ed25519:") {
				return true
			}
			pub, err := keys.VerifyKey(ctx, server, k.Str, p.validAt)
			if err != nil {
				return true
			}
			var sig []byte
			if v.Type == gjson.String {
				sig, err = DecodeBase64(v.Str)
			}
			if v.Type != gjson.String || err != nil {
				bad = true
				return false
			}
			entries = append(entries, ed25519batch.Entry{Pub: pub, Msg: p.signed, Sig: sig})
			found = true
			return true
		})
		if !found || bad {
			return entries, false
		}
	}
	return entries, true
}

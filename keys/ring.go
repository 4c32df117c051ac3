package keys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Defaults for [Ring].
const (
	// DefaultMinRefetch is the least time between two fetches of one
	// server's keys (the spec asks requesters to rate-limit).
	DefaultMinRefetch = time.Minute
	// DefaultFetchTimeout bounds one fetch across all sources.
	DefaultFetchTimeout = time.Minute
	// DefaultMaxServers bounds the servers a ring remembers.
	DefaultMaxServers = 100000
)

type keyRef struct{ server, keyID string }

// keyEntry is one cached key and the last POSIX millisecond at which it may
// verify a signature: min(valid_until_ts, fetch time + 7 days) for current
// keys, expired_ts for old keys. old is set once any verified response
// lists the key under old_verify_keys and stays set: a retired key never
// becomes current again, whatever older responses still say.
type keyEntry struct {
	pub   ed25519.PublicKey
	until int64
	old   bool
}

func (e keyEntry) status() signing.KeyStatus {
	if e.old {
		return signing.KeyOld
	}
	return signing.KeyCurrent
}

type serverState struct {
	fetching  chan struct{} // non-nil while a fetch runs
	lastFetch time.Time
	lastErr   error
	latest    *ServerKeys // the verified response with the greatest valid_until_ts
	keyIDs    []string    // key IDs held in Ring.keys for this server
}

// Ring is a cache of server keys that answers [signing.KeyLookup]: a key is
// looked up by (server, key ID), checked against the time it must be valid
// at, and fetched from Sources on a miss. Concurrent misses for one server
// cause a single fetch; fetches of one server are at least MinRefetch
// apart. A response that publishes a different key under a cached key ID is
// rejected whole. The zero value works but has no sources; set fields
// before first use and do not copy a Ring after first use.
type Ring struct {
	// Sources are tried in order until one yields the wanted key valid at
	// the wanted time, e.g. {&Fetcher{}, &Notary{...}}.
	Sources []Source
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// MinRefetch: see DefaultMinRefetch. Zero: the default; negative: no
	// rate limit.
	MinRefetch time.Duration
	// FetchTimeout: see DefaultFetchTimeout. Zero: the default.
	FetchTimeout time.Duration
	// MaxServers: see DefaultMaxServers. Zero: the default.
	MaxServers int
	// Logger receives one warning per failed fetch or rejected response.
	// Nil: discard.
	Logger *slog.Logger

	mu      sync.RWMutex
	keys    map[keyRef]keyEntry
	servers map[string]*serverState
}

var _ signing.KeyStatusLookup = (*Ring)(nil)

func (r *Ring) now() time.Time { return nowOr(r.Now) }

func (r *Ring) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// VerifyKey implements [signing.KeyLookup]: it returns the public key of
// server with keyID if the key is valid at validAt (zero: any time). A
// cache hit takes a read lock and allocates nothing. On a miss, or when the
// cached key is not valid at validAt, the ring fetches the server's keys
// (asking for keys valid until at least validAt) unless it fetched them
// less than MinRefetch ago. Old keys (old_verify_keys) are returned up to
// their expired_ts, as event verification needs; use [Ring.LookupKey] to
// tell them from current keys.
//
// Errors wrap [signing.ErrUnknownKey] (not found; the fetch error, if any,
// is joined), [signing.ErrKeyExpired] (found but not valid at validAt), or
// are ctx.Err().
func (r *Ring) VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	pub, _, err := r.LookupKey(ctx, server, keyID, validAt)
	return pub, err
}

// LookupKey implements [signing.KeyStatusLookup]: it is [Ring.VerifyKey]
// that also says whether the key is current or old. A key is old once a
// verified response listed it under old_verify_keys.
func (r *Ring) LookupKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, signing.KeyStatus, error) {
	r.mu.RLock()
	e, ok := r.keys[keyRef{server, keyID}]
	r.mu.RUnlock()
	if ok && (validAt.IsZero() || validAt.UnixMilli() <= e.until) {
		return e.pub, e.status(), nil
	}
	return r.lookupSlow(ctx, server, keyID, validAt)
}

func (r *Ring) lookupSlow(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, signing.KeyStatus, error) {
	ref := keyRef{server, keyID}
	for attempt := 0; ; attempt++ {
		r.mu.Lock()
		e, ok := r.keys[ref]
		if ok && (validAt.IsZero() || validAt.UnixMilli() <= e.until) {
			r.mu.Unlock()
			return e.pub, e.status(), nil
		}
		st := r.stateLocked(server)
		if st.fetching == nil {
			if attempt > 0 || !r.mayFetchLocked(st) {
				err := r.missErr(ref, ok, e, validAt, st.lastErr)
				r.mu.Unlock()
				return nil, 0, err
			}
			r.startFetchLocked(ctx, st, server, []string{keyID}, validAt)
		}
		ch := st.fetching
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

func (r *Ring) missErr(ref keyRef, found bool, e keyEntry, validAt time.Time, fetchErr error) error {
	if found {
		return fmt.Errorf("keys: %s %s valid until %d, not at %d: %w", ref.server, ref.keyID, e.until, validAt.UnixMilli(), signing.ErrKeyExpired)
	}
	err := fmt.Errorf("keys: %s %s: %w", ref.server, ref.keyID, signing.ErrUnknownKey)
	if fetchErr != nil {
		err = errors.Join(err, fetchErr)
	}
	return err
}

func (r *Ring) stateLocked(server string) *serverState {
	if r.servers == nil {
		r.servers = make(map[string]*serverState)
		r.keys = make(map[keyRef]keyEntry)
	}
	st := r.servers[server]
	if st == nil {
		max := r.MaxServers
		if max <= 0 {
			max = DefaultMaxServers
		}
		if len(r.servers) >= max {
			r.evictLocked(max)
		}
		st = &serverState{}
		r.servers[server] = st
	}
	return st
}

// evictLocked drops servers (and their keys) that are not being fetched
// until the map is below max, preferring servers without keys.
func (r *Ring) evictLocked(max int) {
	for pass := 0; pass < 2 && len(r.servers) >= max; pass++ {
		for name, st := range r.servers {
			if len(r.servers) < max {
				return
			}
			if st.fetching != nil || (pass == 0 && len(st.keyIDs) > 0) {
				continue
			}
			for _, id := range st.keyIDs {
				delete(r.keys, keyRef{name, id})
			}
			delete(r.servers, name)
		}
	}
}

func (r *Ring) mayFetchLocked(st *serverState) bool {
	if len(r.Sources) == 0 {
		return false
	}
	gap := r.MinRefetch
	if gap == 0 {
		gap = DefaultMinRefetch
	}
	return st.lastFetch.IsZero() || gap < 0 || r.now().Sub(st.lastFetch) >= gap
}

// startFetchLocked starts a fetch that outlives the caller's ctx (other
// callers may be waiting on it) but keeps its values.
func (r *Ring) startFetchLocked(ctx context.Context, st *serverState, server string, keyIDs []string, validAt time.Time) {
	ch := make(chan struct{})
	st.fetching = ch
	st.lastFetch = r.now()
	timeout := r.FetchTimeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	go func() {
		defer cancel()
		err := r.fetch(fctx, server, keyIDs, validAt)
		r.mu.Lock()
		st.lastErr = err
		st.fetching = nil
		r.mu.Unlock()
		close(ch)
	}()
}

// fetch asks each source in turn until the wanted keys are valid at
// validAt.
func (r *Ring) fetch(ctx context.Context, server string, keyIDs []string, validAt time.Time) error {
	minValid := validAt
	if minValid.IsZero() {
		minValid = r.now()
	}
	var errs []error
	for _, src := range r.Sources {
		sks, err := src.FetchKeys(ctx, server, keyIDs, minValid)
		if err != nil {
			r.logger().Warn("keys: fetch failed", "server", server, "err", err)
			errs = append(errs, err)
		}
		for _, sk := range sks {
			if sk.ServerName != server {
				continue
			}
			if err := r.Add(sk); err != nil {
				r.logger().Warn("keys: rejected key response", "server", server, "err", err)
				errs = append(errs, err)
			}
		}
		if r.satisfied(server, keyIDs, validAt) {
			return nil
		}
	}
	return errors.Join(errs...)
}

// satisfied reports whether the fetch can stop: every wanted key is held
// and valid at validAt, or, when no key IDs were named, a response valid
// until at least validAt is held.
func (r *Ring) satisfied(server string, keyIDs []string, validAt time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(keyIDs) == 0 {
		st := r.servers[server]
		return st != nil && st.latest != nil && st.latest.ValidUntilTS >= validAt.UnixMilli()
	}
	for _, id := range keyIDs {
		e, ok := r.keys[keyRef{server, id}]
		if !ok || !(validAt.IsZero() || validAt.UnixMilli() <= e.until) {
			return false
		}
	}
	return true
}

// Add stores the keys of a verified response (from [Parse], a [Source], or
// our own keys), treating it as fetched now. If the response publishes a
// key under a key ID the ring already holds with a different key, nothing
// is stored and the error wraps [ErrKeyConflict]. A key seen again keeps
// the later of its validity times.
func (r *Ring) Add(sk *ServerKeys) error {
	fetched := r.now().UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.stateLocked(sk.ServerName)
	type item struct {
		id    string
		pub   ed25519.PublicKey
		until int64
		old   bool
	}
	items := make([]item, 0, len(sk.VerifyKeys)+len(sk.OldVerifyKeys))
	for id := range sk.VerifyKeys {
		pub, until, _ := sk.KeyValidUntil(id, fetched)
		items = append(items, item{id, pub, until, false})
	}
	for id := range sk.OldVerifyKeys {
		if _, dup := sk.VerifyKeys[id]; dup {
			continue
		}
		pub, until, _ := sk.KeyValidUntil(id, fetched)
		items = append(items, item{id, pub, until, true})
	}
	for _, it := range items {
		if e, ok := r.keys[keyRef{sk.ServerName, it.id}]; ok && !e.pub.Equal(it.pub) {
			return fmt.Errorf("%w: %s %s", ErrKeyConflict, sk.ServerName, it.id)
		}
	}
	for _, it := range items {
		ref := keyRef{sk.ServerName, it.id}
		if e, ok := r.keys[ref]; ok {
			e.until = max(e.until, it.until)
			e.old = e.old || it.old
			r.keys[ref] = e
		} else {
			r.keys[ref] = keyEntry{pub: it.pub, until: it.until, old: it.old}
			st.keyIDs = append(st.keyIDs, it.id)
		}
	}
	if st.latest == nil || sk.ValidUntilTS >= st.latest.ValidUntilTS {
		st.latest = sk
	}
	return nil
}

// ServerKeys returns the newest verified response held for server, for a
// notary answering /_matrix/key/v2/query. If none is held, or the held one
// is valid for less than minimumValidUntil, it fetches (subject to
// MinRefetch, sharing a running fetch) and returns what it then holds,
// possibly an older response (the spec lets notaries serve the last
// response of an offline server). Returns nil and the fetch error if it
// holds nothing.
func (r *Ring) ServerKeys(ctx context.Context, server string, minimumValidUntil time.Time) (*ServerKeys, error) {
	for attempt := 0; ; attempt++ {
		r.mu.Lock()
		st := r.stateLocked(server)
		if st.latest != nil && st.latest.ValidUntilTS >= minimumValidUntil.UnixMilli() {
			sk := st.latest
			r.mu.Unlock()
			return sk, nil
		}
		if st.fetching == nil {
			if attempt > 0 || !r.mayFetchLocked(st) {
				sk, err := st.latest, st.lastErr
				r.mu.Unlock()
				if sk != nil {
					return sk, nil
				}
				if err == nil {
					err = fmt.Errorf("keys: %s: no keys held: %w", server, signing.ErrUnknownKey)
				}
				return nil, err
			}
			r.startFetchLocked(ctx, st, server, nil, minimumValidUntil)
		}
		ch := st.fetching
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

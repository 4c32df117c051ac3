package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
)

// Defaults for fetching.
const (
	// DefaultTimeout bounds one HTTP exchange.
	DefaultTimeout = 30 * time.Second
	// MaxNotaryResponseBytes bounds a notary's /query response.
	MaxNotaryResponseBytes = 4 << 20
	// MaxNotaryObjects bounds the server keys objects in one notary response.
	MaxNotaryObjects = 1000
	// DefaultBatchSize is how many servers one notary POST asks for.
	DefaultBatchSize = 100
)

// Source fetches the keys of a server. keyIDs are the key IDs wanted (a
// hint; implementations may return more) and minimumValidUntil asks for
// keys valid until at least that time (zero: now). Returned objects have
// been parsed and verified by the source.
type Source interface {
	FetchKeys(ctx context.Context, server string, keyIDs []string, minimumValidUntil time.Time) ([]*ServerKeys, error)
}

// Fetcher fetches keys directly from the server: GET
// https://<server>/_matrix/key/v2/server. The zero value is ready to use;
// do not copy a Fetcher after first use.
type Fetcher struct {
	// Client sends the request to a URL whose host is the Matrix server
	// name; it must resolve server names (see serverdiscovery.Transport).
	// Nil: a client over a default serverdiscovery.Transport.
	Client *http.Client
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Timeout bounds one fetch. Zero: DefaultTimeout.
	Timeout time.Duration

	once   sync.Once
	client *http.Client
}

// FetchKeys implements [Source]. The response must pass [Parse] for server
// and must not have expired. Errors wrap [ErrFetch], [ErrExpired] or the
// [Parse] errors.
func (f *Fetcher) FetchKeys(ctx context.Context, server string, _ []string, _ time.Time) ([]*ServerKeys, error) {
	f.once.Do(func() { f.client = clientOr(f.Client) })
	raw, err := get(ctx, f.client, timeoutOr(f.Timeout), "https://"+server+"/_matrix/key/v2/server", MaxResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("keys: direct fetch from %s: %w", server, err)
	}
	sk, err := Parse(raw, server)
	if err != nil {
		return nil, fmt.Errorf("keys: direct fetch from %s: %w", server, err)
	}
	if now := nowOr(f.Now); sk.ValidUntilTS < now.UnixMilli() {
		return nil, fmt.Errorf("%w: %s: valid_until_ts %d is before now", ErrExpired, server, sk.ValidUntilTS)
	}
	return []*ServerKeys{sk}, nil
}

// Notary fetches keys through a trusted key server (notary) with POST
// /_matrix/key/v2/query. Every returned object must carry a valid
// self-signature of its origin and a valid signature of the notary by one
// of Keys. Do not copy a Notary after first use.
type Notary struct {
	// ServerName is the notary's server name.
	ServerName string
	// Keys are the notary's trusted public keys by key ID. Required.
	Keys map[string]ed25519.PublicKey
	// Client sends the request; as for [Fetcher.Client].
	Client *http.Client
	// Timeout bounds one request. Zero: DefaultTimeout.
	Timeout time.Duration
	// BatchSize bounds the servers per request. Zero: DefaultBatchSize.
	BatchSize int

	once   sync.Once
	client *http.Client
}

// KeyRequest asks a notary for a server's keys.
type KeyRequest struct {
	// ServerName is the server whose keys are wanted.
	ServerName string
	// KeyIDs are the key IDs wanted; empty asks for all keys.
	KeyIDs []string
	// MinimumValidUntil asks for keys valid until at least this time.
	// Zero: the notary uses its current time.
	MinimumValidUntil time.Time
}

// FetchKeys implements [Source] with a one-server [Notary.Query]; only
// objects for server are returned.
func (n *Notary) FetchKeys(ctx context.Context, server string, keyIDs []string, minimumValidUntil time.Time) ([]*ServerKeys, error) {
	all, err := n.Query(ctx, []KeyRequest{{ServerName: server, KeyIDs: keyIDs, MinimumValidUntil: minimumValidUntil}})
	var out []*ServerKeys
	for _, sk := range all {
		if sk.ServerName == server {
			out = append(out, sk)
		}
	}
	if len(out) == 0 && err == nil {
		err = fmt.Errorf("%w: notary %s returned no keys for %s", ErrFetch, n.ServerName, server)
	}
	return out, err
}

// Query asks the notary for the keys of several servers, in batches of
// BatchSize servers per POST. It returns every object that verified (origin
// self-signature and notary signature) for a server that was asked for;
// objects that fail are dropped and reported in the returned error
// (joined), which may be non-nil alongside results.
func (n *Notary) Query(ctx context.Context, reqs []KeyRequest) ([]*ServerKeys, error) {
	if len(n.Keys) == 0 {
		return nil, fmt.Errorf("%w: notary %s has no trusted keys", ErrNotarySignature, n.ServerName)
	}
	batch := n.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	var out []*ServerKeys
	var errs []error
	for len(reqs) > 0 {
		k := min(batch, len(reqs))
		got, err := n.queryBatch(ctx, reqs[:k])
		out = append(out, got...)
		if err != nil {
			errs = append(errs, err)
		}
		reqs = reqs[k:]
	}
	return out, errors.Join(errs...)
}

func (n *Notary) queryBatch(ctx context.Context, reqs []KeyRequest) ([]*ServerKeys, error) {
	type criteria struct {
		MinimumValidUntilTS *int64 `json:"minimum_valid_until_ts,omitempty"`
	}
	body := map[string]map[string]map[string]criteria{"server_keys": {}}
	asked := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		asked[r.ServerName] = true
		ids := body["server_keys"][r.ServerName]
		if ids == nil {
			ids = map[string]criteria{}
			body["server_keys"][r.ServerName] = ids
		}
		var c criteria
		if !r.MinimumValidUntil.IsZero() {
			ms := r.MinimumValidUntil.UnixMilli()
			c.MinimumValidUntilTS = &ms
		}
		for _, id := range r.KeyIDs {
			ids[id] = c
		}
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("keys: notary query: %w", err)
	}
	n.once.Do(func() { n.client = clientOr(n.Client) })
	raw, err := post(ctx, n.client, timeoutOr(n.Timeout), "https://"+n.ServerName+"/_matrix/key/v2/query", payload, MaxNotaryResponseBytes)
	if err != nil {
		return nil, fmt.Errorf("keys: notary %s: %w", n.ServerName, err)
	}
	objs, err := splitServerKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("keys: notary %s: %w", n.ServerName, err)
	}
	var out []*ServerKeys
	var errs []error
	for _, obj := range objs {
		sk, err := Parse(obj, "")
		if err == nil && !asked[sk.ServerName] {
			err = fmt.Errorf("%w: notary returned unrequested server %q", ErrWrongServer, sk.ServerName)
		}
		if err == nil {
			err = VerifyNotary(sk, n.ServerName, n.Keys)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("keys: notary %s: %w", n.ServerName, err))
			continue
		}
		out = append(out, sk)
	}
	return out, errors.Join(errs...)
}

// splitServerKeys returns the raw objects of a {"server_keys": [...]} body.
func splitServerKeys(raw []byte) ([][]byte, error) {
	if !gjson.ValidBytes(raw) {
		return nil, fmt.Errorf("%w: invalid JSON", ErrMalformed)
	}
	root := gjson.ParseBytes(raw)
	if !root.IsObject() {
		return nil, fmt.Errorf("%w: response is not an object", ErrMalformed)
	}
	arr := root.Get("server_keys")
	if !arr.IsArray() {
		return nil, fmt.Errorf("%w: server_keys missing or not an array", ErrMalformed)
	}
	var out [][]byte
	var err error
	arr.ForEach(func(_, v gjson.Result) bool {
		if len(out) >= MaxNotaryObjects {
			err = fmt.Errorf("%w: more than %d server keys objects", ErrTooLarge, MaxNotaryObjects)
			return false
		}
		if !v.IsObject() {
			err = fmt.Errorf("%w: server_keys element is not an object", ErrMalformed)
			return false
		}
		out = append(out, []byte(v.Raw))
		return true
	})
	return out, err
}

func timeoutOr(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultTimeout
}

func nowOr(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}

func clientOr(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{Transport: &serverdiscovery.Transport{}}
}

func get(ctx context.Context, c *http.Client, timeout time.Duration, u string, limit int64) ([]byte, error) {
	return do(ctx, c, timeout, http.MethodGet, u, nil, limit)
}

func post(ctx context.Context, c *http.Client, timeout time.Duration, u string, body []byte, limit int64) ([]byte, error) {
	return do(ctx, c, timeout, http.MethodPost, u, body, limit)
}

func do(ctx context.Context, c *http.Client, timeout time.Duration, method, u string, body []byte, limit int64) ([]byte, error) {
	if _, err := url.Parse(u); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := clientOr(c).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrFetch, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

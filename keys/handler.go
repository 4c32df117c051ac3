package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Defaults for [Handler].
const (
	// DefaultValidFor is how far ahead our own valid_until_ts is set.
	DefaultValidFor = 24 * time.Hour
	// MaxQueryBodyBytes bounds a POST /_matrix/key/v2/query body.
	MaxQueryBodyBytes = 64 << 10
	// DefaultMaxQueryServers bounds the servers one query may ask for.
	DefaultMaxQueryServers = 100
)

// Paths served by [Handler].
const (
	// ServerPath is GET /_matrix/key/v2/server: our own keys.
	ServerPath = "/_matrix/key/v2/server"
	// QueryPath is POST /_matrix/key/v2/query and, with a server name
	// appended, GET /_matrix/key/v2/query/{serverName}: notary queries.
	QueryPath = "/_matrix/key/v2/query"
)

// Handler serves GET /_matrix/key/v2/server (our own keys, also under the
// deprecated /_matrix/key/v2/server/{keyID}) and, as a notary, GET
// /_matrix/key/v2/query/{serverName} and POST /_matrix/key/v2/query,
// answering from Ring and countersigning every object with our keys.
// Unknown paths get 404 and wrong methods 405, both M_UNRECOGNIZED.
// Set the fields before serving; do not copy after first use.
type Handler struct {
	// ServerName is our server name.
	ServerName string
	// Keys are our current signing keys (at least one).
	Keys []*signing.Key
	// OldKeys are our retired keys, published in old_verify_keys.
	OldKeys []OldKey
	// ValidFor sets valid_until_ts = now + ValidFor. Zero: DefaultValidFor.
	// The response is rebuilt once half of it has elapsed.
	ValidFor time.Duration
	// Ring answers notary queries for other servers. Nil: queries are
	// answered only for ServerName.
	Ring *Ring
	// MaxQueryServers bounds the servers per query. Zero: the default.
	MaxQueryServers int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives one warning per failed lookup. Nil: discard.
	Logger *slog.Logger

	mu      sync.Mutex
	own     []byte
	ownTill int64 // rebuild after this POSIX millisecond
}

// ServeHTTP implements [http.Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	switch {
	case p == ServerPath || strings.HasPrefix(p, ServerPath+"/"):
		if req.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed")
			return
		}
		own, err := h.Own()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "M_UNKNOWN", "cannot build key response")
			return
		}
		writeJSON(w, own)
	case p == QueryPath:
		if req.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed")
			return
		}
		reqs, err := h.parseQuery(req)
		if err != nil {
			writeError(w, http.StatusBadRequest, "M_BAD_JSON", err.Error())
			return
		}
		h.answer(w, req.Context(), reqs)
	case strings.HasPrefix(p, QueryPath+"/"):
		if req.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "method not allowed")
			return
		}
		server := strings.TrimPrefix(p, QueryPath+"/")
		if err := checkServerName(server); err != nil || strings.Contains(server, "/") {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid server name")
			return
		}
		kr := KeyRequest{ServerName: server}
		if v := req.URL.Query().Get("minimum_valid_until_ts"); v != "" {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "invalid minimum_valid_until_ts")
				return
			}
			kr.MinimumValidUntil = time.UnixMilli(ms)
		}
		h.answer(w, req.Context(), []KeyRequest{kr})
	default:
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "unrecognized request")
	}
}

// Own returns our signed server keys object, rebuilding it when half of its
// validity has elapsed. Errors come from [Build].
func (h *Handler) Own() ([]byte, error) {
	now := nowOr(h.Now)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.own != nil && now.UnixMilli() < h.ownTill {
		return h.own, nil
	}
	validFor := h.ValidFor
	if validFor <= 0 {
		validFor = DefaultValidFor
	}
	own, err := Build(h.ServerName, now.Add(validFor).UnixMilli(), h.Keys, h.OldKeys)
	if err != nil {
		return nil, err
	}
	h.own, h.ownTill = own, now.Add(validFor/2).UnixMilli()
	return own, nil
}

func (h *Handler) parseQuery(req *http.Request) ([]KeyRequest, error) {
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxQueryBodyBytes+1))
	if err != nil {
		return nil, errors.New("cannot read body")
	}
	if len(body) > MaxQueryBodyBytes {
		return nil, errors.New("body too large")
	}
	if !gjson.ValidBytes(body) {
		return nil, errors.New("invalid JSON")
	}
	sks := gjson.GetBytes(body, "server_keys")
	if !sks.IsObject() {
		return nil, errors.New("server_keys missing or not an object")
	}
	limit := h.MaxQueryServers
	if limit <= 0 {
		limit = DefaultMaxQueryServers
	}
	var reqs []KeyRequest
	var perr error
	sks.ForEach(func(server, ids gjson.Result) bool {
		if len(reqs) >= limit {
			perr = fmt.Errorf("more than %d servers", limit)
			return false
		}
		if checkServerName(server.Str) != nil || !ids.IsObject() {
			perr = fmt.Errorf("invalid entry for %q", server.Str)
			return false
		}
		kr := KeyRequest{ServerName: server.Str}
		var maxMin int64
		ids.ForEach(func(id, crit gjson.Result) bool {
			if len(kr.KeyIDs) >= MaxVerifyKeys+MaxOldVerifyKeys {
				perr = fmt.Errorf("too many key IDs for %q", server.Str)
				return false
			}
			kr.KeyIDs = append(kr.KeyIDs, id.Str)
			if m := crit.Get("minimum_valid_until_ts"); m.Exists() {
				v, err := intField(m, "minimum_valid_until_ts")
				if err != nil {
					perr = err
					return false
				}
				maxMin = max(maxMin, v)
			}
			return true
		})
		if maxMin > 0 {
			kr.MinimumValidUntil = time.UnixMilli(maxMin)
		}
		reqs = append(reqs, kr)
		return perr == nil
	})
	return reqs, perr
}

// answer writes {"server_keys": [...]} for reqs, countersigned. Servers
// are looked up concurrently (at most queryWorkers at a time) and each
// lookup gives up after queryLookupTimeout, so one slow origin cannot hold
// the whole answer; servers without an answer are omitted, as the spec
// allows for unreachable servers.
func (h *Handler) answer(w http.ResponseWriter, ctx context.Context, reqs []KeyRequest) {
	now := nowOr(h.Now)
	seen := make(map[string]bool, len(reqs))
	uniq := reqs[:0:0]
	for _, kr := range reqs {
		if !seen[kr.ServerName] {
			seen[kr.ServerName] = true
			uniq = append(uniq, kr)
		}
	}
	out := make([][]byte, len(uniq))
	sem := make(chan struct{}, queryWorkers)
	var wg sync.WaitGroup
	for i, kr := range uniq {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = h.lookup(ctx, kr, now)
		})
	}
	wg.Wait()
	var buf bytes.Buffer
	buf.WriteString(`{"server_keys":[`)
	n := 0
	for _, raw := range out {
		if raw == nil {
			continue
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(raw)
		n++
	}
	buf.WriteString(`]}`)
	writeJSON(w, buf.Bytes())
}

// Bounds on notary lookups made while answering one query.
const (
	queryWorkers       = 8
	queryLookupTimeout = 15 * time.Second
)

// lookup returns the countersigned keys object for one query entry, or nil.
func (h *Handler) lookup(ctx context.Context, kr KeyRequest, now time.Time) []byte {
	if kr.ServerName == h.ServerName {
		own, err := h.Own()
		if err != nil {
			return nil
		}
		return own
	}
	if h.Ring == nil {
		return nil
	}
	minValid := kr.MinimumValidUntil
	if minValid.IsZero() {
		minValid = now
	}
	ctx, cancel := context.WithTimeout(ctx, queryLookupTimeout)
	defer cancel()
	sk, err := h.Ring.ServerKeys(ctx, kr.ServerName, minValid)
	if err != nil {
		h.logger().Warn("keys: notary lookup failed", "server", kr.ServerName, "err", err)
		return nil
	}
	raw := sk.Raw
	for _, k := range h.Keys {
		if raw, err = signing.SignJSON(h.ServerName, k.KeyID(), k.PrivateKey(), raw); err != nil {
			h.logger().Warn("keys: cannot countersign", "server", kr.ServerName, "err", err)
			return nil
		}
	}
	return raw
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(map[string]string{"errcode": code, "error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

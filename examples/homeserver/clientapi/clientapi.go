// Package clientapi is the writer side of the homeserver: the
// client-server API. It keeps accounts and devices, builds events for
// clients (with event.Builder, from the room server's current state), checks
// them against the current state first so that a forbidden request writes
// nothing, and appends them to the input log through the room server,
// answering once the room server has accepted them.
//
// Sends to one room are serialised, so that every event builds on the
// room's single forward extremity.
package clientapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"
)

// API serves the client-server API.
type API struct {
	// OutboundEDU, if set, queues an EDU about a room (our users' typing
	// and public read receipts) for the room's other servers.
	OutboundEDU func(ctx context.Context, roomID string, edu json.RawMessage) error

	db         *db.DB
	rs         *roomserver.RoomServer
	sync       *syncapi.SyncAPI
	serverName string
	key        *signing.Key
	log        *slog.Logger
	bcryptCost int
	js         nats.JetStreamContext

	mediaDir  string
	maxUpload int64

	registration                         string
	loginLimit, registerLimit, sendLimit *limiter

	typing   typingTimers
	presence presenceState

	// fed reaches other servers (nil: no federation).
	fed *federation.Client

	// tokens caches access tokens' devices (tokencache.go).
	tokens tokenCache

	roomLocksMu sync.Mutex
	roomLocks   map[string]*sync.Mutex

	ext *ext // set by Extend (ext.go)
}

// Options configure the API.
type Options struct {
	// BcryptCost for password hashes; zero means bcrypt.DefaultCost.
	BcryptCost int
	// Logs is the JetStream context the API writes the typing, receipt,
	// presence, to-device and account data logs through.
	Logs nats.JetStreamContext
	// MediaDir holds uploaded files; required for media.
	MediaDir string
	// MaxUploadBytes limits uploads; zero means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// Registration is "open" (the dummy stage), "token" (a registration
	// token, m.login.registration_token) or "closed".
	Registration string
	// RegistrationTokens are accepted with unlimited uses.
	RegistrationTokens []string
	// RateLimits; nil means no limits.
	RateLimits *RateLimits
	// Federation reaches other servers for remote joins, invites and
	// profiles; nil: this server does not federate.
	Federation *federation.Client
}

// New prepares the tables.
func New(db *db.DB, rs *roomserver.RoomServer, sy *syncapi.SyncAPI, serverName string, key *signing.Key, log *slog.Logger, opts Options) (*API, error) {
	if _, err := db.Exec(schema + deviceSchema + mediaSchema + directorySchema); err != nil {
		return nil, fmt.Errorf("clientapi: schema: %w", err)
	}
	cost := opts.BcryptCost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	if err := hashStoredTokens(db); err != nil {
		return nil, fmt.Errorf("clientapi: hashing stored access tokens: %w", err)
	}
	switch opts.Registration {
	case "open", "token", "closed":
	default:
		return nil, fmt.Errorf("clientapi: registration mode %q: want open, token or closed", opts.Registration)
	}
	for _, t := range opts.RegistrationTokens {
		if !registrationTokenPattern.MatchString(t) {
			return nil, fmt.Errorf("clientapi: registration token %q: want 1-64 of [A-Za-z0-9._~-]", t)
		}
		if _, err := db.Exec(`INSERT INTO cs_registration_tokens (token) VALUES (?) ON CONFLICT DO NOTHING`, t); err != nil {
			return nil, err
		}
	}
	var limits RateLimits
	if opts.RateLimits != nil {
		limits = *opts.RateLimits
	}
	maxUpload := opts.MaxUploadBytes
	if maxUpload <= 0 {
		maxUpload = DefaultMaxUploadBytes
	}
	return &API{db: db, rs: rs, sync: sy, serverName: serverName, key: key, log: log, bcryptCost: cost, js: opts.Logs, fed: opts.Federation,
		mediaDir: opts.MediaDir, maxUpload: maxUpload, registration: opts.Registration,
		loginLimit: newLimiter(limits.Login), registerLimit: newLimiter(limits.Register), sendLimit: newLimiter(limits.Send),
		typing: typingTimers{timers: map[[2]string]*time.Timer{}}, presence: presenceState{last: map[string]presenceMemo{}},
		roomLocks: map[string]*sync.Mutex{}}, nil
}

func (a *API) roomLock(roomID string) *sync.Mutex {
	a.roomLocksMu.Lock()
	defer a.roomLocksMu.Unlock()
	m := a.roomLocks[roomID]
	if m == nil {
		m = &sync.Mutex{}
		a.roomLocks[roomID] = m
	}
	return m
}

// send builds an event in an existing room from the current state, checks
// it, and submits it to the room server. It returns the event ID.
func (a *API) send(ctx context.Context, roomID, evType, sender string, stateKey *string, content []byte, redacts string) (string, error) {
	return a.sendTxn(ctx, nil, roomID, evType, sender, stateKey, content, redacts)
}

// sendTxn is send for a client transaction, which travels with the event
// in the input log.
func (a *API) sendTxn(ctx context.Context, txn *roomserver.Txn, roomID, evType, sender string, stateKey *string, content []byte, redacts string) (string, error) {
	lock := a.roomLock(roomID)
	lock.Lock()
	defer lock.Unlock()
	rules, err := a.rs.RoomVersion(roomID)
	if errors.Is(err, roomserver.ErrUnknownRoom) {
		return "", httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room")
	}
	if err != nil {
		return "", err
	}
	// Only the entries the event's auth needs: the work of a send does not
	// grow with the room's state.
	state, err := a.rs.CurrentStateFor(roomID, roomserver.StateKeysFor(rules, evType, sender, stateKey, content))
	if err != nil {
		return "", err
	}
	prev, depth, err := a.rs.LatestEvents(roomID)
	if err != nil {
		return "", err
	}
	sk := ""
	if stateKey != nil {
		sk = *stateKey
	}
	var auth []string
	for _, k := range eventauth.AuthEventsNeeded(rules, evType, sk, sender, content) {
		if p := state[k]; p != nil {
			auth = append(auth, p.EventID())
		}
	}
	b := event.Builder{RoomID: roomID, Type: evType, Sender: sender, StateKey: stateKey, Content: content,
		PrevEvents: prev, AuthEvents: auth, Depth: min(depth+1, rules.MaxDepth), Redacts: redacts}
	return a.buildAndSubmit(ctx, rules, &b, state, txn)
}

func (a *API) buildAndSubmit(ctx context.Context, rules roomversion.Rules, b *event.Builder, state eventauth.StateMap, txn *roomserver.Txn) (string, error) {
	ev, err := b.Build(rules, a.serverName, a.key.KeyID(), a.key.PrivateKey())
	if errors.Is(err, event.ErrTooLarge) {
		return "", httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", err.Error())
	}
	if err != nil {
		return "", httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	return a.submit(ctx, rules, ev, state, txn)
}

// submit checks a built event against state (when given) and hands it to
// the room server.
func (a *API) submit(ctx context.Context, rules roomversion.Rules, ev *event.PDU, state eventauth.StateMap, txn *roomserver.Txn) (string, error) {
	// Check against the current state first: a forbidden event is never
	// appended to the log.
	if state != nil {
		if err := eventauth.Check(ev, state); err != nil {
			return "", httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", err.Error())
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	eventID, err := a.rs.Submit(sctx, rules, ev, txn)
	if err != nil {
		var rej *roomserver.RejectedError
		if errors.As(err, &rej) {
			return "", httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", rej.Err.Error())
		}
		if errors.Is(err, roomserver.ErrLogUnavailable) {
			e := httputil.Errorf(http.StatusServiceUnavailable, "M_UNKNOWN", "the event log is unreachable; retry later")
			e.RetryAfter = 5 * time.Second
			return "", e
		}
		return "", err
	}
	return eventID, nil
}

// membership returns the user's current membership in the room.
func (a *API) membership(roomID, userID string) (string, error) {
	m, err := a.rs.CurrentStateEvent(roomID, "m.room.member", userID)
	if errors.Is(err, roomserver.ErrUnknownRoom) {
		return "", httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", "unknown room")
	}
	if err != nil {
		return "", err
	}
	if m != nil {
		return m.Membership(), nil
	}
	return "", nil
}

func parseLimit(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return def
	}
	return min(n, 1000)
}

func (a *API) localUserID(localpart string) string {
	return "@" + strings.ToLower(localpart) + ":" + a.serverName
}

// Package federationapi is the inbound side of federation: a writer, like
// clientapi, that serves the server-server API to other homeservers. Every
// route runs behind the library's federation.Authenticator (X-Matrix,
// destination checked, keys from a keys.Ring), so handlers see the
// verified origin only.
//
// PDUs from /send are checked (format per room version, signatures and
// content hash) and handed to the room server with their origin, which
// checks auth against the auth events, the state before the event and the
// current state (soft failure), fetching missing previous events from the
// origin. Membership handshakes (make_join/send_join, make_leave/
// send_leave, invite, make_knock/send_knock) check every template and event
// they are asked to sign or accept before anything is signed. Reads of the
// room (event, state, state_ids, event_auth, backfill, get_missing_events)
// are refused to servers with no joined user in the room and filtered by
// history visibility per requesting server. m.room.server_acl is enforced
// on every room-scoped request and on each PDU.
//
// EDUs are accepted and dropped with a log line: typing, receipts and
// presence have no logs in this example yet.
package federationapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomatrixlib/gomatrixlib/eventauth"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/federation/inbound"
	"github.com/gomatrixlib/gomatrixlib/federation/membership"
	"github.com/gomatrixlib/gomatrixlib/signing"
	"github.com/tidwall/gjson"
)

// Limits of one transaction (spec: server-server API, "Transactions").
const (
	MaxPDUs = 50
	MaxEDUs = 100
	// maxTxnBytes bounds a /send body (the authenticator bounds it first).
	maxTxnBytes = 4 << 20
)

// Profiles looks up local users' profiles (clientapi implements it).
type Profiles interface {
	// Profile returns the user's display name and whether the user exists.
	Profile(ctx context.Context, userID string) (displayName string, ok bool, err error)
}

// API serves the federation API.
type API struct {
	db         *db.DB
	rs         *roomserver.RoomServer
	serverName string
	key        *signing.Key
	keys       signing.KeyLookup
	profiles   Profiles
	log        *slog.Logger

	// txnLocks serialises transactions of one origin, so that a retried
	// transaction waits for the first and gets its stored answer.
	txnMu    sync.Mutex
	txnLocks map[string]*sync.Mutex

	// OnRequest, if set, is called with the origin of every authenticated
	// request (the federation sender wakes a backed-off destination).
	OnRequest func(origin string)

	// Ephemeral, if set, takes the typing notifications and receipts of
	// other servers' EDUs; without it EDUs are dropped with a log line.
	Ephemeral Ephemeral

	// Counters of what was refused, for logs and tests.
	RejectedPDUs atomic.Int64
	DroppedEDUs  atomic.Int64
}

const schema = `
CREATE TABLE IF NOT EXISTS fed_txns (
	origin TEXT NOT NULL, txn_id TEXT NOT NULL, response TEXT NOT NULL,
	PRIMARY KEY (origin, txn_id));
`

// New prepares the API's table. keys verifies other servers' signatures
// (a keys.Ring).
func New(d *db.DB, rs *roomserver.RoomServer, serverName string, key *signing.Key, keys signing.KeyLookup, profiles Profiles, log *slog.Logger) (*API, error) {
	if _, err := d.Exec(schema); err != nil {
		return nil, fmt.Errorf("federationapi: schema: %w", err)
	}
	return &API{db: d, rs: rs, serverName: serverName, key: key, keys: keys, profiles: profiles, log: log, txnLocks: map[string]*sync.Mutex{}}, nil
}

// Handler returns the authenticated federation API, to be mounted at
// /_matrix/federation/ (the unauthenticated /version is the caller's).
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := map[string]func(http.ResponseWriter, *http.Request, string) error{
		"PUT /v1/send/{txnId}":                         a.send,
		"GET /v1/make_join/{roomId}/{userId}":          a.makeJoin,
		"PUT /v1/send_join/{roomId}/{eventId}":         a.sendJoin(1),
		"PUT /v2/send_join/{roomId}/{eventId}":         a.sendJoin(2),
		"GET /v1/make_leave/{roomId}/{userId}":         a.makeLeave,
		"PUT /v1/send_leave/{roomId}/{eventId}":        a.sendLeave(1),
		"PUT /v2/send_leave/{roomId}/{eventId}":        a.sendLeave(2),
		"GET /v1/make_knock/{roomId}/{userId}":         a.makeKnock,
		"PUT /v1/send_knock/{roomId}/{eventId}":        a.sendKnock,
		"PUT /v1/invite/{roomId}/{eventId}":            a.invite(1),
		"PUT /v2/invite/{roomId}/{eventId}":            a.invite(2),
		"GET /v1/event/{eventId}":                      a.getEvent,
		"GET /v1/state/{roomId}":                       a.state(false),
		"GET /v1/state_ids/{roomId}":                   a.state(true),
		"GET /v1/event_auth/{roomId}/{eventId}":        a.eventAuth,
		"GET /v1/backfill/{roomId}":                    a.backfill,
		"POST /v1/get_missing_events/{roomId}":         a.getMissingEvents,
		"GET /v1/query/profile":                        a.queryProfile,
		"GET /v1/query/directory":                      a.queryDirectory,
		"GET /v1/publicRooms":                          a.publicRooms,
		"POST /v1/publicRooms":                         a.publicRooms,
		"GET /v1/user/devices/{userId}":                a.userDevices,
		"POST /v1/user/keys/query":                     a.keysQuery,
		"POST /v1/user/keys/claim":                     a.keysClaim,
		"GET /v1/openid/userinfo":                      a.notSupported,
		"GET /v1/hierarchy/{roomId}":                   a.notSupported,
		"PUT /v1/3pid/onbind":                          a.notSupported,
		"PUT /v1/exchange_third_party_invite/{roomId}": a.notSupported,
	}
	for pattern, h := range routes {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" /_matrix/federation"+path, func(w http.ResponseWriter, r *http.Request) {
			origin, ok := federation.OriginFromContext(r.Context())
			if !ok {
				httputil.WriteError(w, httputil.Errorf(http.StatusUnauthorized, "M_UNAUTHORIZED", "no verified origin"))
				return
			}
			if a.OnRequest != nil {
				a.OnRequest(origin)
			}
			if err := h(w, r, origin); err != nil {
				var le *membership.Error
				if errors.As(err, &le) {
					// The library's refusals carry their status and errcode.
					body, _ := le.MarshalJSON()
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(le.Status)
					_, _ = w.Write(body)
					a.log.Info("federationapi: request refused", "path", r.URL.Path, "origin", origin, "err", err)
					return
				}
				var me *httputil.Error
				if !errors.As(err, &me) {
					a.log.Error("federationapi: request failed", "path", r.URL.Path, "origin", origin, "err", err)
				}
				httputil.WriteError(w, err)
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { httputil.WriteError(w, httputil.ErrNotFound) })
	auth := &federation.Authenticator{ServerName: a.serverName, Keys: a.keys, MaxBodyBytes: maxTxnBytes, Logger: a.log}
	return auth.Wrap(mux)
}

func (a *API) notSupported(http.ResponseWriter, *http.Request, string) error {
	return httputil.Errorf(http.StatusNotFound, "M_UNRECOGNIZED", "not supported by this server")
}

func forbidden(format string, args ...any) error {
	return httputil.Errorf(http.StatusForbidden, "M_FORBIDDEN", fmt.Sprintf(format, args...))
}

func badJSON(format string, args ...any) error {
	return httputil.Errorf(http.StatusBadRequest, "M_BAD_JSON", fmt.Sprintf(format, args...))
}

func notFound(format string, args ...any) error {
	return httputil.Errorf(http.StatusNotFound, "M_NOT_FOUND", fmt.Sprintf(format, args...))
}

// readBody reads the (already authenticated and bounded) body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxTxnBytes+1))
	if err != nil {
		return nil, badJSON("could not read body")
	}
	if len(b) > maxTxnBytes {
		return nil, httputil.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "request body too large")
	}
	if !gjson.ValidBytes(b) {
		return nil, httputil.Errorf(http.StatusBadRequest, "M_NOT_JSON", "body is not JSON")
	}
	return b, nil
}

// serverOf returns the server name of a user ID.
func serverOf(userID string) string {
	_, s, _ := strings.Cut(userID, ":")
	return s
}

// roomState returns the rules and current state of a room we have, or 404.
func (a *API) roomState(roomID string) (eventauth.StateMap, error) {
	state, err := a.rs.CurrentState(roomID)
	if errors.Is(err, roomserver.ErrUnknownRoom) || (err == nil && len(state) == 0) {
		return nil, notFound("unknown room")
	}
	return state, err
}

// checkACL enforces m.room.server_acl for origin in the room's current
// state.
func checkACL(state eventauth.StateMap, origin string) error {
	if !ACLAllows(state, origin) {
		return forbidden("server %s is denied by the room's server ACL", origin)
	}
	return nil
}

// ACLAllows evaluates m.room.server_acl in state for server with the
// library's inbound.ServerAllowed (no ACL event: allowed).
func ACLAllows(state eventauth.StateMap, server string) bool {
	acl := state[eventauth.StateKey{Type: "m.room.server_acl", StateKey: ""}]
	if acl == nil {
		return true
	}
	return inbound.ServerAllowed(acl.Content(), server)
}

// requireInRoom refuses servers with no joined user in the room's current
// state, and servers the room's ACL denies.
func (a *API) requireInRoom(roomID, origin string) (eventauth.StateMap, error) {
	state, err := a.roomState(roomID)
	if err != nil {
		return nil, err
	}
	if err := checkACL(state, origin); err != nil {
		return nil, err
	}
	for userID, m := range state.Members() {
		if serverOf(userID) == origin && m.Membership() == "join" {
			return state, nil
		}
	}
	return nil, forbidden("server %s has no joined user in the room", origin)
}

func writeRaw(w http.ResponseWriter, v any) {
	httputil.WriteJSON(w, http.StatusOK, v)
}

func rawEvents(evs []json.RawMessage) []json.RawMessage {
	if evs == nil {
		return []json.RawMessage{}
	}
	return evs
}

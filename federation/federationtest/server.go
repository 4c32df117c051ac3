package federationtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/roomtest"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// TB is the part of testing.TB the package uses; *testing.T and
// *testing.B satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

func fail(tb TB, err error) {
	if tb == nil {
		panic(err)
	}
	tb.Helper()
	tb.Fatalf("%v", err)
}

// Endpoint names a federation endpoint the fake server answers.
type Endpoint string

// The endpoints, one per method of federation.Client, plus event_auth.
const (
	Version          Endpoint = "version"
	Send             Endpoint = "send"
	MakeJoin         Endpoint = "make_join"
	SendJoin         Endpoint = "send_join"
	MakeLeave        Endpoint = "make_leave"
	SendLeave        Endpoint = "send_leave"
	MakeKnock        Endpoint = "make_knock"
	SendKnock        Endpoint = "send_knock"
	Invite           Endpoint = "invite"
	GetEvent         Endpoint = "event"
	State            Endpoint = "state"
	StateIDs         Endpoint = "state_ids"
	EventAuth        Endpoint = "event_auth"
	Backfill         Endpoint = "backfill"
	GetMissingEvents Endpoint = "get_missing_events"
	QueryProfile     Endpoint = "query_profile"
	QueryDirectory   Endpoint = "query_directory"
	PublicRooms      Endpoint = "public_rooms"
	UserDevices      Endpoint = "user_devices"
	UserKeysQuery    Endpoint = "user_keys_query"
	UserKeysClaim    Endpoint = "user_keys_claim"
)

var routes = []struct {
	ep      Endpoint
	pattern string
}{
	{Version, "GET /_matrix/federation/v1/version"},
	{Send, "PUT /_matrix/federation/v1/send/{txnID}"},
	{MakeJoin, "GET /_matrix/federation/v1/make_join/{roomID}/{userID}"},
	{SendJoin, "PUT /_matrix/federation/v2/send_join/{roomID}/{eventID}"},
	{MakeLeave, "GET /_matrix/federation/v1/make_leave/{roomID}/{userID}"},
	{SendLeave, "PUT /_matrix/federation/v2/send_leave/{roomID}/{eventID}"},
	{MakeKnock, "GET /_matrix/federation/v1/make_knock/{roomID}/{userID}"},
	{SendKnock, "PUT /_matrix/federation/v1/send_knock/{roomID}/{eventID}"},
	{Invite, "PUT /_matrix/federation/v2/invite/{roomID}/{eventID}"},
	{GetEvent, "GET /_matrix/federation/v1/event/{eventID}"},
	{State, "GET /_matrix/federation/v1/state/{roomID}"},
	{StateIDs, "GET /_matrix/federation/v1/state_ids/{roomID}"},
	{EventAuth, "GET /_matrix/federation/v1/event_auth/{roomID}/{eventID}"},
	{Backfill, "GET /_matrix/federation/v1/backfill/{roomID}"},
	{GetMissingEvents, "POST /_matrix/federation/v1/get_missing_events/{roomID}"},
	{QueryProfile, "GET /_matrix/federation/v1/query/profile"},
	{QueryDirectory, "GET /_matrix/federation/v1/query/directory"},
	{PublicRooms, "GET /_matrix/federation/v1/publicRooms"},
	{UserDevices, "GET /_matrix/federation/v1/user/devices/{userID}"},
	{UserKeysQuery, "POST /_matrix/federation/v1/user/keys/query"},
	{UserKeysClaim, "POST /_matrix/federation/v1/user/keys/claim"},
}

// Request is a federation request the server received, after its X-Matrix
// authorization verified.
type Request struct {
	Endpoint Endpoint
	Method   string
	// Path is the request path, escaped as sent.
	Path  string
	Query url.Values
	// Origin is the verified origin server.
	Origin string
	// Body is the request body (nil for none).
	Body []byte
	// Path parameters, when the endpoint has them.
	RoomID, EventID, UserID, TxnID string
	// Context is the request's context.
	Context context.Context
}

// Response is a handler's answer. Body is sent as JSON: []byte and
// json.RawMessage as they are, anything else through json.Marshal. A zero
// Status means 200.
type Response struct {
	Status int
	Body   any
}

// JSON returns a response with the given status and body.
func JSON(status int, body any) Response { return Response{Status: status, Body: body} }

// Error returns a Matrix error response.
func Error(status int, errcode, message string) Response {
	return Response{Status: status, Body: map[string]string{"errcode": errcode, "error": message}}
}

// Handler answers one endpoint.
type Handler func(req *Request) Response

// Options configure a fake server.
type Options struct {
	// Name is the server name, a DNS name such as "remote.test".
	// Required.
	Name string
	// Rooms are the rooms the server is in; its default answers come from
	// them. More can be added with AddRoom. Several servers may share a
	// room.
	Rooms []*roomtest.Room
	// Network is the network the server registers in; nil means a new
	// network owned by the server (Server.Network), using the keyring of
	// the first room.
	Network *Network
	// Keys looks up the keys of requesting servers, and of event senders,
	// for verification. Nil: the rooms' keyrings, then the network's
	// keyring, then a key fetch from the server over the network.
	Keys signing.KeyLookup
	// Logger receives the middleware's rejections. Nil: discard.
	Logger *slog.Logger
}

// Server is a fake homeserver: an HTTPS server on 127.0.0.1 with its own
// server name and signing key, serving /_matrix/key/v2/server and the
// federation API. Every federation request must carry a valid X-Matrix
// signature (federation.Authenticator checks it) and is recorded. Each
// endpoint answers with a handler the test set (Handle) or by default from
// the server's rooms (Default). Safe for concurrent use.
type Server struct {
	// Name is the server name.
	Name string
	// Key is the server's signing key (the network keyring's key of Name).
	Key *signing.Key
	// Network is the network the server is reachable in.
	Network *Network
	// Addr is the server's 127.0.0.1 address.
	Addr netip.AddrPort

	lookup    signing.KeyLookup
	srv       *httptest.Server
	ownsNet   bool
	closeOnce sync.Once

	mu       sync.Mutex
	rooms    []*roomtest.Room
	handlers map[Endpoint]Handler
	requests []*Request
	changed  chan struct{}
	aliases  map[string]string
	txnID    int
}

// New starts a fake server for the test tb, stopped when the test ends.
// With a nil tb (Examples) errors panic and the caller calls Close.
func New(tb TB, opts Options) *Server {
	if tb != nil {
		tb.Helper()
	}
	s, err := start(opts)
	if err != nil {
		fail(tb, err)
		return nil
	}
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

func start(opts Options) (*Server, error) {
	if opts.Name == "" {
		return nil, fmt.Errorf("federationtest: Options.Name is required")
	}
	s := &Server{Name: opts.Name, Network: opts.Network, rooms: slices.Clone(opts.Rooms),
		handlers: map[Endpoint]Handler{}, changed: make(chan struct{}), aliases: map[string]string{}}
	if s.Network == nil {
		var kr *roomtest.Keyring
		if len(opts.Rooms) > 0 {
			kr = opts.Rooms[0].Keys
		}
		n, err := startNetwork(kr)
		if err != nil {
			return nil, err
		}
		s.Network, s.ownsNet = n, true
	}
	s.Key = s.Network.Keys.Key(s.Name)
	s.lookup = opts.Keys
	if s.lookup == nil {
		s.lookup = serverLookup{s}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+keys.ServerPath, &keys.Handler{ServerName: s.Name, Keys: []*signing.Key{s.Key}})
	fed := http.NewServeMux()
	for _, r := range routes {
		fed.Handle(r.pattern, s.endpoint(r.ep))
	}
	fed.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		write(w, Error(http.StatusNotFound, "M_UNRECOGNIZED", "federationtest: unknown endpoint"))
	})
	auth := &federation.Authenticator{ServerName: s.Name, Keys: s.lookup, Logger: logger}
	mux.Handle("/_matrix/federation/", auth.Wrap(fed))
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.TLS = s.Network.CA.ServerTLS()
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	addr, err := netip.ParseAddrPort(s.srv.Listener.Addr().String())
	if err != nil {
		s.srv.Close()
		return nil, err
	}
	s.Addr = addr
	s.Network.Register(s.Name, addr)
	return s, nil
}

// Close stops the server (and its network if it made it).
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.Close()
		if s.ownsNet {
			s.Network.Close()
		}
	})
}

// serverLookup is the default key lookup of a server.
type serverLookup struct{ s *Server }

func (l serverLookup) VerifyKey(ctx context.Context, server, keyID string, validAt time.Time) (ed25519.PublicKey, error) {
	s := l.s
	for _, r := range s.Rooms() {
		if pub, err := r.Keys.VerifyKey(ctx, server, keyID, validAt); err == nil {
			return pub, nil
		}
	}
	return s.Network.VerifyKey(ctx, server, keyID, validAt)
}

// AddRoom adds a room the server answers for.
func (s *Server) AddRoom(r *roomtest.Room) {
	s.mu.Lock()
	s.rooms = append(s.rooms, r)
	s.mu.Unlock()
}

// Rooms returns the server's rooms.
func (s *Server) Rooms() []*roomtest.Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rooms)
}

// Room returns the server's room with the given ID, or nil.
func (s *Server) Room(roomID string) *roomtest.Room {
	for _, r := range s.Rooms() {
		if r.ID == roomID {
			return r
		}
	}
	return nil
}

// SetAlias makes query/directory answer alias with roomID.
func (s *Server) SetAlias(alias, roomID string) {
	s.mu.Lock()
	s.aliases[alias] = roomID
	s.mu.Unlock()
}

// Handle makes h answer ep instead of the default; nil restores the
// default. h may call Default to start from the default answer.
func (s *Server) Handle(ep Endpoint, h Handler) {
	s.mu.Lock()
	if h == nil {
		delete(s.handlers, ep)
	} else {
		s.handlers[ep] = h
	}
	s.mu.Unlock()
}

// Requests returns the requests received so far, for every endpoint when
// eps is empty, else for those.
func (s *Server) Requests(eps ...Endpoint) []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Request
	for _, r := range s.requests {
		if len(eps) == 0 || slices.Contains(eps, r.Endpoint) {
			out = append(out, r)
		}
	}
	return out
}

// Await waits until the server has received at least n requests to ep
// and returns them; after timeout it fails tb (or, with a nil tb, returns
// what it has).
func (s *Server) Await(tb TB, ep Endpoint, n int, timeout time.Duration) []*Request {
	if tb != nil {
		tb.Helper()
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if got := s.Requests(ep); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline.C:
			got := s.Requests(ep)
			if tb != nil {
				tb.Fatalf("federationtest: %s got %d %s requests in %v, want %d", s.Name, len(got), ep, timeout, n)
			}
			return got
		}
	}
}

// Client returns a federation client that sends requests as this server,
// for pushing events or requests to the server under test.
func (s *Server) Client() *federation.Client {
	return s.Network.FederationClient(s.Name, s.Key)
}

// SendPDUs sends evs to destination in one transaction from this server
// (transaction IDs count up per server) and returns the per-PDU results.
// Errors are those of federation.Client.SendTransaction.
func (s *Server) SendPDUs(ctx context.Context, destination string, evs ...*event.PDU) (map[string]json.RawMessage, error) {
	txn := federation.Transaction{Origin: s.Name, OriginServerTS: time.Now().UnixMilli(), PDUs: raws(evs)}
	s.mu.Lock()
	s.txnID++
	id := fmt.Sprintf("federationtest-%d", s.txnID)
	s.mu.Unlock()
	return s.Client().SendTransaction(ctx, destination, id, txn)
}

func (s *Server) endpoint(ep Endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			write(w, Error(http.StatusBadRequest, "M_BAD_JSON", err.Error()))
			return
		}
		if len(body) == 0 {
			body = nil
		}
		origin, _ := federation.OriginFromContext(r.Context())
		req := &Request{Endpoint: ep, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(),
			Origin: origin, Body: body, RoomID: r.PathValue("roomID"), EventID: r.PathValue("eventID"),
			UserID: r.PathValue("userID"), TxnID: r.PathValue("txnID"), Context: r.Context()}
		s.mu.Lock()
		s.requests = append(s.requests, req)
		close(s.changed)
		s.changed = make(chan struct{})
		h := s.handlers[ep]
		s.mu.Unlock()
		if h == nil {
			h = s.Default
		}
		write(w, h(req))
	})
}

func write(w http.ResponseWriter, resp Response) {
	var body []byte
	switch b := resp.Body.(type) {
	case nil:
		body = []byte(`{}`)
	case []byte:
		body = b
	case json.RawMessage:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			resp = Error(http.StatusInternalServerError, "M_UNKNOWN", err.Error())
			body, _ = json.Marshal(resp.Body)
		}
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.Copy(w, bytes.NewReader(body))
}

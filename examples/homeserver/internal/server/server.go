// Package server assembles the homeserver: the data folder (signing key,
// TLS certificate, database, log store), the event logs, the room server,
// the sync reader, the client API on HTTP and the federation API (our own
// keys and version) on HTTPS.
package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"

	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/clientapi"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/federationapi"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/federationsender"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/httputil"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/logs"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/syncapi"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

// Config is the server configuration; zero fields take the defaults.
type Config struct {
	// ServerName is the Matrix server name. Default: "localhost:<federation port>".
	ServerName string
	// DataDir holds the key, certificate, database and log store.
	DataDir string
	// ClientAddr is the client API listen address (HTTP).
	ClientAddr string
	// FederationAddr is the federation API listen address (HTTPS).
	FederationAddr string
	// NATSURL, if set, uses an external NATS with JetStream instead of the
	// embedded one.
	NATSURL string
	// PostgresDSN, if set, stores everything in PostgreSQL instead of the
	// SQLite database in DataDir.
	PostgresDSN string
	// MaxUploadBytes limits media uploads; zero is clientapi's default
	// (50 MiB).
	MaxUploadBytes int64
	// Registration is "open", "token" or "closed"; empty means open while
	// the client API listens on a loopback address, token-only otherwise.
	Registration string
	// RegistrationTokens are accepted for token registration.
	RegistrationTokens []string
	// NoRateLimits turns the rate limits off (tests that need speed);
	// otherwise RateLimits, or clientapi.DefaultRateLimits when nil.
	NoRateLimits bool
	RateLimits   *clientapi.RateLimits
	// BcryptCost for passwords; zero is the default cost.
	BcryptCost int
	// Logger; nil logs to stderr at info level.
	Logger *slog.Logger

	// AllowPrivateDestinations lets outbound federation (and key fetches)
	// reach loopback, private and link-local addresses, which the
	// library's serverdiscovery.Guard refuses by default. Unsafe outside
	// tests and private deployments: any server in a room could make us
	// send requests into our own network.
	AllowPrivateDestinations bool
	// InsecureSkipTLSVerify skips the verification of other servers' TLS
	// certificates (self-signed test servers). Unsafe outside tests.
	InsecureSkipTLSVerify bool
	// SenderBackoff overrides the outbound queue's backoff (tests use
	// short delays). Nil: the library's default (5 s doubling to 1 h).
	SenderBackoff *federation.Backoff
	// OutboundFilter, if set, is asked before every outbound federation
	// request and fails it with its error: tests cut a server off from
	// another (a partition) without stopping it.
	OutboundFilter func(destination string) error
	// OutboundTransport, if set, replaces the outbound HTTP transport
	// (server discovery, TLS) for federation and key fetches: tests reach
	// fake servers through their own resolver and CA with it.
	OutboundTransport http.RoundTripper
}

// Server is a running homeserver.
type Server struct {
	cfg       Config
	log       *slog.Logger
	key       *signing.Key
	db        *db.DB
	logs      *logs.Logs
	rs        *roomserver.RoomServer
	sync      *syncapi.SyncAPI
	client    *clientapi.API
	fedAPI    *federationapi.API
	fedSender *federationsender.FederationSender
	fedClient *federation.Client
	keyRing   *keys.Ring
	clientLn  net.Listener
	fedLn     net.Listener
	clientSrv *http.Server
	fedSrv    *http.Server
}

// Start creates what is missing in the data folder, opens everything and
// starts listening.
func Start(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:8008"
	}
	if cfg.FederationAddr == "" {
		cfg.FederationAddr = "127.0.0.1:8448"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	var err error
	if s.clientLn, err = net.Listen("tcp", cfg.ClientAddr); err != nil {
		return nil, err
	}
	if s.fedLn, err = net.Listen("tcp", cfg.FederationAddr); err != nil {
		return nil, err
	}
	if s.cfg.ServerName == "" {
		_, port, _ := net.SplitHostPort(s.fedLn.Addr().String())
		s.cfg.ServerName = "localhost:" + port
	}
	if s.key, err = loadOrCreateKey(filepath.Join(cfg.DataDir, "signing.key")); err != nil {
		return nil, err
	}
	cert, err := loadOrCreateCert(cfg.DataDir, s.cfg.ServerName)
	if err != nil {
		return nil, err
	}
	if s.db, err = db.Open(cfg.DataDir, cfg.PostgresDSN); err != nil {
		return nil, err
	}
	if s.logs, err = logs.Open(cfg.NATSURL, cfg.DataDir); err != nil {
		return nil, err
	}
	s.outbound()
	if s.rs, err = roomserver.New(s.db, s.logs.JS, s.cfg.ServerName, s.key, log); err != nil {
		return nil, err
	}
	s.rs.SetFederation(s.keyRing, s.fedClient)
	if s.sync, err = syncapi.New(s.db, s.logs.JS, log); err != nil {
		return nil, err
	}
	if s.client, err = clientapi.New(s.db, s.rs, s.sync, s.cfg.ServerName, s.key, log, clientapi.Options{BcryptCost: cfg.BcryptCost, Logs: s.logs.JS, Federation: s.fedClient,
		MediaDir: filepath.Join(cfg.DataDir, "media"), MaxUploadBytes: cfg.MaxUploadBytes,
		Registration: s.registrationMode(), RegistrationTokens: cfg.RegistrationTokens, RateLimits: s.rateLimits()}); err != nil {
		return nil, err
	}
	if err := s.client.Extend(); err != nil { // push rule changes (clientapi/ext.go)
		return nil, err
	}
	if s.fedAPI, err = federationapi.New(s.db, s.rs, s.cfg.ServerName, s.key, s.rs, s.client, log); err != nil {
		return nil, err
	}
	if s.fedSender, err = federationsender.New(s.db, s.logs.JS, s.cfg.ServerName, s.fedClient, log, federationsender.Options{Backoff: cfg.SenderBackoff}); err != nil {
		return nil, err
	}
	s.fedAPI.OnRequest = s.fedSender.Wake
	s.fedAPI.Ephemeral = s.client
	s.client.OutboundEDU = s.fedSender.SendEDU
	if err := s.rs.Start(); err != nil {
		return nil, err
	}
	if err := s.sync.Start(); err != nil {
		return nil, err
	}
	if err := s.fedSender.Start(); err != nil {
		return nil, err
	}
	s.clientSrv = &http.Server{Handler: s.client.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.clientSrv.Serve(s.clientLn) }()
	s.fedSrv = &http.Server{Handler: s.federationHandler(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = s.fedSrv.ServeTLS(s.fedLn, "", "") }()
	ok = true
	log.Info("homeserver started", "server_name", s.cfg.ServerName, "client_api", "http://"+s.ClientAddr(), "federation_api", "https://"+s.FederationAddr(), "data", cfg.DataDir)
	return s, nil
}

// registrationMode is the configured mode, or open on a loopback client
// listener and token-only elsewhere.
func (s *Server) registrationMode() string {
	if s.cfg.Registration != "" {
		return s.cfg.Registration
	}
	if ap, err := netip.ParseAddrPort(s.clientLn.Addr().String()); err == nil && ap.Addr().IsLoopback() {
		return "open"
	}
	return "token"
}

func (s *Server) rateLimits() *clientapi.RateLimits {
	if s.cfg.NoRateLimits {
		return nil
	}
	if s.cfg.RateLimits != nil {
		return s.cfg.RateLimits
	}
	l := clientapi.DefaultRateLimits
	return &l
}

func (s *Server) federationHandler() http.Handler {
	mux := http.NewServeMux()
	kh := &keys.Handler{ServerName: s.cfg.ServerName, Keys: []*signing.Key{s.key}}
	mux.Handle("/_matrix/key/", kh)
	mux.HandleFunc("GET /_matrix/federation/v1/version", func(w http.ResponseWriter, _ *http.Request) {
		httputil.WriteJSON(w, 200, map[string]any{"server": map[string]string{"name": "gomatrixlib example homeserver", "version": "0.1"}})
	})
	mux.Handle("/_matrix/federation/", s.fedAPI.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { httputil.WriteError(w, httputil.ErrNotFound) })
	return mux
}

// outbound makes the HTTP client other servers are reached with (server
// discovery with its address guard, TLS verification unless turned off),
// the key ring that fetches their keys, and the federation client.
func (s *Server) outbound() {
	var guard serverdiscovery.Guard
	if s.cfg.AllowPrivateDestinations {
		guard.Allow = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	}
	resolver := &serverdiscovery.Resolver{Guard: guard, Logger: s.log}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.cfg.InsecureSkipTLSVerify} //nolint:gosec // documented test option
	var rt http.RoundTripper = &serverdiscovery.Transport{Resolver: resolver, TLSConfig: tlsConf}
	if s.cfg.OutboundTransport != nil {
		rt = s.cfg.OutboundTransport
	}
	if s.cfg.OutboundFilter != nil {
		rt = filterTransport{rt, s.cfg.OutboundFilter}
	}
	hc := &http.Client{Transport: rt, Timeout: 60 * time.Second}
	s.keyRing = &keys.Ring{Sources: []keys.Source{&keys.Fetcher{Client: hc}}, Logger: s.log}
	s.fedClient = &federation.Client{ServerName: s.cfg.ServerName, Key: s.key, HTTPClient: hc}
}

// ServerName returns the server name in use.
func (s *Server) ServerName() string { return s.cfg.ServerName }

// SigningKey returns the server's signing key ID and public key.
func (s *Server) SigningKey() (string, ed25519.PublicKey) { return s.key.KeyID(), s.key.Public() }

// FederationStats returns how many PDUs the federation API refused and
// how many EDUs it dropped since the start.
func (s *Server) FederationStats() (rejectedPDUs, droppedEDUs int64) {
	return s.fedAPI.RejectedPDUs.Load(), s.fedAPI.DroppedEDUs.Load()
}

// ClientAddr returns the client API address.
func (s *Server) ClientAddr() string { return s.clientLn.Addr().String() }

// FederationAddr returns the federation API address.
func (s *Server) FederationAddr() string { return s.fedLn.Addr().String() }

// Close stops listening, lets the consumers finish their current entry and
// closes the logs and the database.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.clientSrv != nil {
		_ = s.clientSrv.Shutdown(ctx)
	} else if s.clientLn != nil {
		s.clientLn.Close()
	}
	if s.fedSrv != nil {
		_ = s.fedSrv.Shutdown(ctx)
	} else if s.fedLn != nil {
		s.fedLn.Close()
	}
	if s.fedSender != nil {
		s.fedSender.Stop()
	}
	if s.rs != nil {
		s.rs.Stop()
	}
	if s.sync != nil {
		s.sync.Stop()
	}
	if s.logs != nil {
		s.logs.Close()
	}
	if s.db != nil {
		s.db.Close()
	}
}

func loadOrCreateKey(path string) (*signing.Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return signing.ParseKey(strings.TrimSpace(string(b)))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := signing.GenerateKey("ed25519:a_" + randomVersion())
	if err != nil {
		return nil, err
	}
	text, _ := k.MarshalText()
	if err := os.WriteFile(path, append(text, '\n'), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func randomVersion() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func loadOrCreateCert(dir, serverName string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return c, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	host := serverName
	if h, _, err := net.SplitHostPort(serverName); err == nil {
		host = h
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP("127.0.0.1"))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// filterTransport fails the requests its filter refuses.
type filterTransport struct {
	base   http.RoundTripper
	filter func(destination string) error
}

func (f filterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := f.filter(req.URL.Host); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return f.base.RoundTrip(req)
}

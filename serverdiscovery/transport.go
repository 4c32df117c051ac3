package serverdiscovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Transport is an [http.RoundTripper] for federation requests. The host of
// each request URL (scheme "https" or "matrix-federation") is a Matrix
// server name, e.g. https://example.org/_matrix/key/v2/server. Transport
// resolves it with Resolver, sends the request with the Host header of the
// [Result], dials the result's addresses in order (guarded) and verifies the
// certificate against [Result.TLSServerName]. Connections are pooled per
// server name. Safe for concurrent use; do not copy after first use.
type Transport struct {
	// Resolver resolves server names. Nil: a private zero Resolver.
	Resolver *Resolver
	// TLSConfig is the base TLS configuration (RootCAs, client
	// certificates...). ServerName is always overwritten. Nil: system roots.
	TLSConfig *tls.Config
	// IdleConnTimeout closes idle pooled connections. Zero: 90 s.
	IdleConnTimeout time.Duration

	once sync.Once
	res  *Resolver
	base *http.Transport
}

type resultKey struct{}

func (t *Transport) init() {
	t.res = t.Resolver
	if t.res == nil {
		t.res = &Resolver{}
	}
	idle := t.IdleConnTimeout
	if idle <= 0 {
		idle = 90 * time.Second
	}
	t.base = &http.Transport{
		DialTLSContext:        t.dialTLS,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       idle,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
}

// RoundTrip implements [http.RoundTripper]. Resolution errors are returned
// as is (see [Resolver.Resolve]).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.once.Do(t.init)
	if req.URL == nil || (req.URL.Scheme != "https" && req.URL.Scheme != "matrix-federation") {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("serverdiscovery: transport needs an https or matrix-federation URL")
	}
	name := req.URL.Host
	res, err := t.res.Resolve(req.Context(), name)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r2 := req.Clone(context.WithValue(req.Context(), resultKey{}, res))
	r2.URL.Scheme = "https"
	// The pool key must separate "example.org" from "example.org:443":
	// they resolve differently. Names without a port get port 0, which is
	// never dialled (dialTLS uses the Result's addresses).
	if sn, _ := parseServerName(name); !sn.hasPort {
		r2.URL.Host = name + ":0"
		if sn.ip.Is6() {
			r2.URL.Host = "[" + sn.host + "]:0"
		}
	}
	r2.Host = res.Host
	return t.base.RoundTrip(r2)
}

// CloseIdleConnections closes pooled connections that are idle.
func (t *Transport) CloseIdleConnections() {
	t.once.Do(t.init)
	t.base.CloseIdleConnections()
}

func (t *Transport) dialTLS(ctx context.Context, network, _ string) (net.Conn, error) {
	res, ok := ctx.Value(resultKey{}).(*Result)
	if !ok {
		return nil, errors.New("serverdiscovery: transport dial without a resolution result")
	}
	var cfg *tls.Config
	if t.TLSConfig != nil {
		cfg = t.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = res.TLSServerName
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"http/1.1"}
	}
	var errs []error
	for _, ap := range res.Addrs {
		conn, err := t.res.dialAddrs(ctx, network, []netip.AddrPort{ap})
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			errs = append(errs, fmt.Errorf("tls %s: %w", ap, err))
			continue
		}
		return tc, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("serverdiscovery: %s: %w", res.ServerName, ErrNoAddress)
	}
	return nil, fmt.Errorf("serverdiscovery: %s: %w", res.ServerName, errors.Join(errs...))
}

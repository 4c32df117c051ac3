package serverdiscovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultPort is the federation port used when neither the server name nor
// SRV records give one.
const DefaultPort = 8448

// DefaultTimeout bounds one .well-known fetch and one DNS exchange.
const DefaultTimeout = 10 * time.Second

// DefaultResultTTL is how long a Result is reused at most by default.
const DefaultResultTTL = time.Minute

// maxCacheEntries bounds the .well-known cache; when full, expired entries
// and then arbitrary ones are dropped.
const maxCacheEntries = 10000

// Step names the step of the resolution algorithm that produced a
// [Result], numbered as in the spec.
type Step uint8

// The steps of "Resolving server names".
const (
	StepIPLiteral             Step = iota + 1 // 1: IP literal
	StepExplicitPort                          // 2: hostname with explicit port
	StepDelegatedIPLiteral                    // 3.1: m.server is an IP literal
	StepDelegatedExplicitPort                 // 3.2: m.server hostname with port
	StepDelegatedSRV                          // 3.3: SRV _matrix-fed._tcp of m.server
	StepDelegatedLegacySRV                    // 3.4: SRV _matrix._tcp of m.server (deprecated)
	StepDelegatedDefaultPort                  // 3.5: m.server hostname, port 8448
	StepSRV                                   // 4: SRV _matrix-fed._tcp of the hostname
	StepLegacySRV                             // 5: SRV _matrix._tcp of the hostname (deprecated)
	StepDefaultPort                           // 6: hostname, port 8448
)

var stepNames = [...]string{"?", "1", "2", "3.1", "3.2", "3.3", "3.4", "3.5", "4", "5", "6"}

// String returns the spec's step number, e.g. "3.3".
func (s Step) String() string {
	if int(s) < len(stepNames) {
		return stepNames[s]
	}
	return "?"
}

// Result says how to reach a server.
type Result struct {
	// ServerName is the name that was resolved.
	ServerName string
	// Delegated is the "m.server" value of the server's .well-known, or ""
	// when the well-known step was not used.
	Delegated string
	// Step is the step of the algorithm that produced the result.
	Step Step
	// Addrs are the addresses to try, in order (SRV priority, then
	// weighted random order within a priority). Every address passed the
	// resolver's [Guard].
	Addrs []netip.AddrPort
	// Host is the value for the HTTP Host header.
	Host string
	// TLSServerName is the name the certificate must be valid for and the
	// value for tls.Config.ServerName. It is an IP address (no brackets)
	// when the certificate must be valid for an IP, in which case Go's TLS
	// stack sends no SNI, as the spec requires.
	TLSServerName string
	// WellKnownErr is why the .well-known step was skipped (fetch failed,
	// invalid body, too large, redirect loop...), possibly from the cache;
	// nil when the well-known was used or not consulted.
	WellKnownErr error

	ttl       uint32    // smallest DNS TTL of the records used, seconds
	wkExpires time.Time // expiry of the .well-known cache entry used, if any
}

func (res *Result) clone() *Result {
	c := *res
	c.Addrs = slices.Clone(res.Addrs)
	return &c
}

// Resolver resolves server names. The zero value is ready to use: system
// DNS server from /etc/resolv.conf, a guarded HTTP client with the system
// roots, the real clock, private addresses refused. A Resolver caches
// .well-known results and must not be copied after first use; it is safe
// for concurrent use.
type Resolver struct {
	// DNSServer is the "host:port" of the recursive DNS resolver to ask.
	// Empty: the first nameserver of /etc/resolv.conf.
	DNSServer string
	// LookupNetIP, when set, finds the addresses (A and AAAA) of host
	// names instead of the resolver's own DNS client; SRV records still
	// come from DNSServer. Set it to net.DefaultResolver.LookupNetIP to
	// resolve names as the rest of the system does (/etc/hosts, so
	// "localhost" too). It is called with network "ip"; its addresses
	// still pass the Guard, IPv4 first, and, having no DNS TTL, a Result
	// that used them is reused for ResultTTL. Nil: the DNS client.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
	// HTTPClient fetches .well-known. Nil: a client dialling through
	// [Resolver.DialContext]. A non-nil client is copied and its
	// CheckRedirect replaced by the resolver's redirect bound; its
	// transport is responsible for enforcing the guard (use
	// [Resolver.DialContext] or [Guard.Dialer]).
	HTTPClient *http.Client
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Guard decides which addresses may be returned and dialled.
	Guard Guard
	// Logger receives one warning per failed .well-known fetch. Nil:
	// discard.
	Logger *slog.Logger
	// Timeout bounds one .well-known fetch and one DNS exchange. Zero:
	// DefaultTimeout.
	Timeout time.Duration
	// MaxRedirects bounds .well-known redirects. Zero: DefaultMaxRedirects.
	MaxRedirects int
	// MaxWellKnownBytes bounds the .well-known body. Zero:
	// DefaultMaxWellKnownBytes.
	MaxWellKnownBytes int64
	// ResultTTL is how long a whole Result is reused for the same name,
	// further capped by the smallest DNS TTL of the records used and by
	// the .well-known cache entry. Zero: DefaultResultTTL; negative: every
	// Resolve looks the name up again (the .well-known cache still applies).
	ResultTTL time.Duration

	// randN orders SRV records of equal priority; nil: math/rand/v2.
	randN func(n uint64) uint64

	defaultTransportOnce sync.Once
	defaultTransport     *http.Transport // for .well-known when HTTPClient is nil

	mu      sync.Mutex
	cache   map[string]*wellKnownEntry
	results map[string]*resultEntry
	flights map[string]*flight
}

type resultEntry struct {
	res     *Result
	expires time.Time
}

type wellKnownEntry struct {
	delegated string
	err       error
	expires   time.Time
	failures  int
}

type flight struct {
	done chan struct{}
	res  *Result
	err  error
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Resolver) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

func (r *Resolver) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Resolve resolves serverName with a fresh zero [Resolver] (no cache shared
// between calls). Long-lived programs should keep one Resolver instead.
func Resolve(ctx context.Context, serverName string) (*Result, error) {
	var r Resolver
	return r.Resolve(ctx, serverName)
}

// Resolve finds how to reach serverName, following the server-server API
// "Resolving server names" algorithm step by step. Concurrent calls for the
// same name share one resolution; a caller whose ctx ends stops waiting
// without cancelling the others. The returned Result is the caller's own.
//
// Errors wrap [ErrInvalidServerName], [ErrDNS], [ErrNoAddress],
// [ErrServiceUnavailable] or [ErrForbiddenAddress], or are ctx.Err().
// Problems with .well-known do not fail the resolution: as the spec says,
// the algorithm continues with SRV, and [Result.WellKnownErr] says why.
func (r *Resolver) Resolve(ctx context.Context, serverName string) (*Result, error) {
	sn, err := parseServerName(serverName)
	if err != nil {
		return nil, err
	}
	if sn.ip.IsValid() {
		// Step 1 needs no lookup and no shared state.
		return r.resolve(ctx, serverName, sn)
	}
	r.mu.Lock()
	if e := r.results[serverName]; e != nil && r.now().Before(e.expires) {
		res := e.res.clone()
		r.mu.Unlock()
		return res, nil
	}
	if r.flights == nil {
		r.flights = make(map[string]*flight)
	}
	f, ok := r.flights[serverName]
	if !ok {
		f = &flight{done: make(chan struct{})}
		r.flights[serverName] = f
		go func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*r.timeout())
			defer cancel()
			f.res, f.err = r.resolve(fctx, serverName, sn)
			r.mu.Lock()
			delete(r.flights, serverName)
			if f.err == nil {
				r.storeResultLocked(serverName, f.res)
			}
			r.mu.Unlock()
			close(f.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return f.res.clone(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// storeResultLocked caches res until the earliest of ResultTTL, its DNS
// TTL and its .well-known cache entry's expiry.
func (r *Resolver) storeResultLocked(name string, res *Result) {
	ttl := r.ResultTTL
	if ttl == 0 {
		ttl = DefaultResultTTL
	}
	if ttl < 0 {
		return
	}
	now := r.now()
	expires := now.Add(min(ttl, time.Duration(res.ttl)*time.Second))
	if !res.wkExpires.IsZero() && res.wkExpires.Before(expires) {
		expires = res.wkExpires
	}
	if !now.Before(expires) {
		return
	}
	if r.results == nil {
		r.results = make(map[string]*resultEntry)
	}
	if len(r.results) >= maxCacheEntries {
		evict(r.results, now, func(e *resultEntry) time.Time { return e.expires })
	}
	r.results[name] = &resultEntry{res: res, expires: expires}
}

func (r *Resolver) resolve(ctx context.Context, name string, sn serverName) (*Result, error) {
	res := &Result{ServerName: name, ttl: ^uint32(0)}
	switch {
	case sn.ip.IsValid(): // step 1
		res.Step = StepIPLiteral
		res.Host = sn.hostHeader()
		res.TLSServerName = sn.ip.String()
		return r.finish(res, []netip.AddrPort{netip.AddrPortFrom(sn.ip, portOr(sn))})
	case sn.hasPort: // step 2
		res.Step = StepExplicitPort
		res.Host = sn.hostHeader()
		res.TLSServerName = sn.host
		return r.hostAddrs(ctx, res, sn.host, uint16(sn.port))
	}
	// Step 3: .well-known.
	delegated, wkExpires, wkErr := r.wellKnown(ctx, sn.host)
	res.wkExpires = wkExpires
	if wkErr == nil {
		res.Delegated = delegated
		dn, err := parseServerName(delegated)
		if err != nil { // ParseWellKnown validated it; keep the check local
			return nil, err
		}
		switch {
		case dn.ip.IsValid(): // 3.1
			res.Step = StepDelegatedIPLiteral
			res.Host = dn.hostHeader()
			res.TLSServerName = dn.ip.String()
			return r.finish(res, []netip.AddrPort{netip.AddrPortFrom(dn.ip, portOr(dn))})
		case dn.hasPort: // 3.2
			res.Step = StepDelegatedExplicitPort
			res.Host = dn.hostHeader()
			res.TLSServerName = dn.host
			return r.hostAddrs(ctx, res, dn.host, uint16(dn.port))
		}
		// 3.3 - 3.5
		res.Host = dn.host
		res.TLSServerName = dn.host
		return r.srvOrDefault(ctx, res, dn.host, StepDelegatedSRV, StepDelegatedLegacySRV, StepDelegatedDefaultPort)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Steps 4 - 6.
	res.WellKnownErr = wkErr
	res.Host = sn.host
	res.TLSServerName = sn.host
	return r.srvOrDefault(ctx, res, sn.host, StepSRV, StepLegacySRV, StepDefaultPort)
}

func portOr(sn serverName) uint16 {
	if sn.hasPort {
		return uint16(sn.port)
	}
	return DefaultPort
}

func (r *Resolver) finish(res *Result, addrs []netip.AddrPort) (*Result, error) {
	allowed, err := r.Guard.filter(addrs)
	if err != nil {
		return nil, fmt.Errorf("serverdiscovery: %s (step %s): %w", res.ServerName, res.Step, err)
	}
	res.Addrs = allowed
	return res, nil
}

func (r *Resolver) hostAddrs(ctx context.Context, res *Result, host string, port uint16) (*Result, error) {
	ips, err := r.lookupHost(ctx, host, &res.ttl)
	if err != nil {
		return nil, fmt.Errorf("serverdiscovery: %s (step %s): %w", res.ServerName, res.Step, err)
	}
	addrs := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		addrs[i] = netip.AddrPortFrom(ip, port)
	}
	return r.finish(res, addrs)
}

// srvOrDefault runs the SRV, legacy SRV and default-port steps for host.
func (r *Resolver) srvOrDefault(ctx context.Context, res *Result, host string, srvStep, legacyStep, defStep Step) (*Result, error) {
	for _, st := range [...]struct {
		step   Step
		prefix string
	}{{srvStep, "_matrix-fed._tcp."}, {legacyStep, "_matrix._tcp."}} {
		res.Step = st.step
		recs, err := r.lookupSRV(ctx, st.prefix+host, &res.ttl)
		if err != nil {
			return nil, fmt.Errorf("serverdiscovery: %s (step %s): %w", res.ServerName, res.Step, err)
		}
		if len(recs) == 0 {
			continue
		}
		var addrs []netip.AddrPort
		var lastErr error
		for _, rec := range recs {
			ips, err := r.lookupHost(ctx, rec.Target, &res.ttl)
			if err != nil {
				lastErr = err
				continue
			}
			for _, ip := range ips {
				addrs = append(addrs, netip.AddrPortFrom(ip, rec.Port))
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("serverdiscovery: %s (step %s): no SRV target resolved: %w", res.ServerName, res.Step, lastErr)
		}
		return r.finish(res, addrs)
	}
	res.Step = defStep
	return r.hostAddrs(ctx, res, host, DefaultPort)
}

// wellKnown returns the delegated name for host from the cache or a fetch.
// Callers are serialised per name by the flight in Resolve.
func (r *Resolver) wellKnown(ctx context.Context, host string) (string, time.Time, error) {
	now := r.now()
	r.mu.Lock()
	e := r.cache[host]
	failures := 0
	if e != nil {
		if now.Before(e.expires) {
			r.mu.Unlock()
			return e.delegated, e.expires, e.err
		}
		failures = e.failures
	}
	r.mu.Unlock()

	delegated, ttl, err := r.fetchWellKnown(ctx, host)
	if err != nil && ctx.Err() != nil {
		return "", now, err // our own deadline or cancellation: do not cache
	}
	entry := &wellKnownEntry{delegated: delegated, err: err}
	if err != nil {
		entry.failures = failures + 1
		ttl = failureLifetime(entry.failures)
		r.logger().Warn("serverdiscovery: .well-known failed", "server", host, "failures", entry.failures, "retry_in", ttl, "err", err)
	}
	entry.expires = now.Add(ttl)
	r.mu.Lock()
	if r.cache == nil {
		r.cache = make(map[string]*wellKnownEntry)
	}
	if ttl > 0 || err != nil {
		if len(r.cache) >= maxCacheEntries {
			evict(r.cache, now, func(e *wellKnownEntry) time.Time { return e.expires })
		}
		r.cache[host] = entry
	} else {
		delete(r.cache, host)
	}
	r.mu.Unlock()
	return delegated, entry.expires, err
}

// evict drops expired entries, then arbitrary ones, until m is below
// maxCacheEntries.
func evict[E any](m map[string]E, now time.Time, expires func(E) time.Time) {
	for k, e := range m {
		if !now.Before(expires(e)) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < maxCacheEntries {
			break
		}
		delete(m, k)
	}
}

// Forget drops what the resolver remembers about serverName: its cached
// Result and its .well-known cache entry.
func (r *Resolver) Forget(serverName string) {
	r.mu.Lock()
	delete(r.cache, serverName)
	delete(r.results, serverName)
	r.mu.Unlock()
}

// DialContext dials address ("host:port") for HTTP clients: a hostname is
// looked up through the resolver's DNS server, and every address is
// checked by the resolver's [Guard] before and at connect time. Errors wrap
// [ErrForbiddenAddress], [ErrDNS] or [ErrNoAddress], or come from the dial.
func (r *Resolver) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("serverdiscovery: dial %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("serverdiscovery: dial %q: bad port", address)
	}
	var addrs []netip.AddrPort
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port))}
	} else {
		ips, err := r.lookupHost(ctx, host, nil)
		if err != nil {
			return nil, fmt.Errorf("serverdiscovery: dial %q: %w", address, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, netip.AddrPortFrom(ip, uint16(port)))
		}
	}
	return r.dialAddrs(ctx, network, addrs)
}

// dialAddrs tries each allowed address in order.
func (r *Resolver) dialAddrs(ctx context.Context, network string, addrs []netip.AddrPort) (net.Conn, error) {
	addrs, err := r.Guard.filter(addrs)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, ErrNoAddress
	}
	d := r.Guard.Dialer(&net.Dialer{Timeout: r.timeout()})
	var errs []error
	for _, ap := range addrs {
		c, err := d.DialContext(ctx, network, ap.String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("serverdiscovery: dial: %w", errors.Join(errs...))
}

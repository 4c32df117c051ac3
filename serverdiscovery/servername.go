package serverdiscovery

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// serverName is a parsed server name: hostname, optional port, and the IP
// when the hostname is an IP literal.
type serverName struct {
	host    string     // hostname as written, IPv6 without brackets
	port    int        // 0 when absent
	ip      netip.Addr // valid when the hostname is an IP literal
	hasPort bool
}

// maxServerNameLen bounds the server name length (dns-name is at most 255
// characters; with brackets and port a little more).
const maxServerNameLen = 255 + 6

// parseServerName parses s per the server-name grammar (FACTS §3.3) and
// requires a dialable port (1-65535) when one is present.
func parseServerName(s string) (serverName, error) {
	var sn serverName
	if s == "" || len(s) > maxServerNameLen {
		return sn, fmt.Errorf("%w: %q: empty or too long", ErrInvalidServerName, s)
	}
	host, rest := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return sn, fmt.Errorf("%w: %q: missing ']'", ErrInvalidServerName, s)
		}
		host, rest = s[1:end], s[end+1:]
		if len(host) < 2 || len(host) > 45 || strings.Trim(host, "0123456789abcdefABCDEF:.") != "" {
			return sn, fmt.Errorf("%w: %q: bad IPv6 literal", ErrInvalidServerName, s)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return sn, fmt.Errorf("%w: %q: bad IPv6 literal", ErrInvalidServerName, s)
		}
		sn.ip = ip
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, rest = s[:i], s[i:]
	}
	if rest != "" {
		if rest[0] != ':' {
			return sn, fmt.Errorf("%w: %q: junk after IPv6 literal", ErrInvalidServerName, s)
		}
		digits := rest[1:]
		if len(digits) == 0 || len(digits) > 5 || strings.Trim(digits, "0123456789") != "" {
			return sn, fmt.Errorf("%w: %q: bad port", ErrInvalidServerName, s)
		}
		p, _ := strconv.Atoi(digits)
		if p < 1 || p > 65535 {
			return sn, fmt.Errorf("%w: %q: port %d out of range", ErrInvalidServerName, s, p)
		}
		sn.port, sn.hasPort = p, true
	}
	sn.host = host
	if sn.ip.IsValid() {
		return sn, nil
	}
	if host == "" || len(host) > 255 {
		return sn, fmt.Errorf("%w: %q: empty or too long hostname", ErrInvalidServerName, s)
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return sn, fmt.Errorf("%w: %q: bad character %q", ErrInvalidServerName, s, c)
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		sn.ip = ip
		return sn, nil
	}
	// A name made only of digits and dots that is not a valid IPv4 address
	// (1.2.3.256) matches dns-name in the grammar but can never be resolved
	// sensibly; treat it as invalid rather than sending it to DNS.
	if strings.Trim(host, "0123456789.") == "" {
		return sn, fmt.Errorf("%w: %q: not a valid IPv4 address", ErrInvalidServerName, s)
	}
	// Labels: non-empty, no leading or trailing hyphen, at most 63 bytes.
	for label := range strings.SplitSeq(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return sn, fmt.Errorf("%w: %q: bad DNS label", ErrInvalidServerName, s)
		}
	}
	return sn, nil
}

// hostPort formats host and port for a Host header or URL authority,
// bracketing IPv6 addresses.
func (sn serverName) hostHeader() string {
	h := sn.host
	if sn.ip.Is6() {
		h = "[" + h + "]"
	}
	if sn.hasPort {
		h += ":" + strconv.Itoa(sn.port)
	}
	return h
}

package serverdiscovery

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/id"
)

// serverName is a parsed server name: hostname, optional port, and the IP
// when the hostname is an IP literal.
type serverName struct {
	host    string     // hostname as written, IPv6 without brackets
	port    int        // 0 when absent
	ip      netip.Addr // valid when the hostname is an IP literal
	hasPort bool
}

// parseServerName parses s with id.ParseServerName (grammar, port 1-65535,
// valid IP literals) and then requires a DNS name to be resolvable: labels
// of 1-63 characters that do not start or end with '-', and not made only
// of digits and dots (no such top-level domain exists; "1.2.3" is a typo of
// an IP, not a name to send to DNS). Errors wrap [ErrInvalidServerName].
func parseServerName(s string) (serverName, error) {
	n, err := id.ParseServerName(s)
	if err != nil {
		if !errors.Is(err, ErrInvalidServerName) {
			err = fmt.Errorf("%w: %w", ErrInvalidServerName, err)
		}
		return serverName{}, err
	}
	sn := serverName{host: n.Host()}
	sn.port, sn.hasPort = n.Port()
	if n.IsIP() {
		ip, err := netip.ParseAddr(sn.host)
		if err != nil {
			return serverName{}, fmt.Errorf("%w: %q: bad IP literal", ErrInvalidServerName, s)
		}
		sn.ip = ip
		return sn, nil
	}
	if strings.Trim(sn.host, "0123456789.") == "" {
		return serverName{}, fmt.Errorf("%w: %q: digits-only name is not a valid IPv4 address", ErrInvalidServerName, s)
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(sn.host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return serverName{}, fmt.Errorf("%w: %q: bad DNS label", ErrInvalidServerName, s)
		}
	}
	return sn, nil
}

// hostHeader formats host and port for a Host header or URL authority,
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

package id

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxLength is the largest size in bytes of any identifier, sigil and
// server name included.
const MaxLength = 255

// Sentinel errors wrapped by the parsers.
var (
	ErrTooLong           = errors.New("id: identifier longer than 255 bytes")
	ErrInvalidServerName = errors.New("id: invalid server name")
	ErrInvalidUserID     = errors.New("id: invalid user ID")
	ErrInvalidRoomID     = errors.New("id: invalid room ID")
	ErrInvalidEventID    = errors.New("id: invalid event ID")
	ErrInvalidAlias      = errors.New("id: invalid room alias")
	ErrInvalidKeyID      = errors.New("id: invalid key ID")
)

func invalid(sentinel error, s, why string) error {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Errorf("%w %q: %s", sentinel, s, why)
}

// ServerName is a parsed server name: a DNS name, an IPv4 literal or a
// bracketed IPv6 literal, with an optional port.
type ServerName struct {
	raw  string
	host string // as written; IPv6 without brackets
	port int    // 0 when absent
	ip   bool
}

// ParseServerName parses s under the spec's server name grammar. A port,
// when present, must be 1 to 65535. A host that has the shape of an IPv4
// literal (four dot-separated groups of digits) must be a valid one: the
// grammar would otherwise let "1.2.3.256" pass as a DNS name, which no
// resolver would treat as one. Errors wrap [ErrInvalidServerName] or
// [ErrTooLong].
func ParseServerName(s string) (ServerName, error) {
	if len(s) > MaxLength {
		return ServerName{}, fmt.Errorf("%w: server name of %d bytes", ErrTooLong, len(s))
	}
	if s == "" {
		return ServerName{}, invalid(ErrInvalidServerName, s, "empty")
	}
	sn := ServerName{raw: s}
	rest := s
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return ServerName{}, invalid(ErrInvalidServerName, s, "missing ']'")
		}
		lit := s[1:end]
		for i := 0; i < len(lit); i++ {
			c := lit[i]
			if !(isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.') {
				return ServerName{}, invalid(ErrInvalidServerName, s, "bad character in IPv6 literal")
			}
		}
		addr, err := netip.ParseAddr(lit)
		if err != nil || !addr.Is6() || len(lit) < 2 || len(lit) > 45 {
			return ServerName{}, invalid(ErrInvalidServerName, s, "bad IPv6 literal")
		}
		sn.host, sn.ip = lit, true
		rest = s[end+1:]
		if rest != "" && rest[0] != ':' {
			return ServerName{}, invalid(ErrInvalidServerName, s, "junk after IPv6 literal")
		}
	} else {
		host := s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host = s[:i]
		}
		if host == "" {
			return ServerName{}, invalid(ErrInvalidServerName, s, "empty host")
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !(isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') || c == '-' || c == '.') {
				return ServerName{}, invalid(ErrInvalidServerName, s, fmt.Sprintf("bad character %q in host", c))
			}
		}
		if looksIPv4(host) {
			addr, err := netip.ParseAddr(host)
			if err != nil || !addr.Is4() {
				return ServerName{}, invalid(ErrInvalidServerName, s, "bad IPv4 literal")
			}
			sn.ip = true
		}
		sn.host = host
		rest = s[len(host):]
	}
	if rest != "" {
		p := rest[1:]
		if len(p) == 0 || len(p) > 5 {
			return ServerName{}, invalid(ErrInvalidServerName, s, "port must be 1 to 5 digits")
		}
		n := 0
		for i := 0; i < len(p); i++ {
			if !isDigit(p[i]) {
				return ServerName{}, invalid(ErrInvalidServerName, s, "port is not a number")
			}
			n = n*10 + int(p[i]-'0')
		}
		if n < 1 || n > 65535 {
			return ServerName{}, invalid(ErrInvalidServerName, s, "port out of range 1-65535")
		}
		sn.port = n
	}
	return sn, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// looksIPv4 reports whether h is four dot-separated groups of 1-3 digits.
func looksIPv4(h string) bool {
	groups := strings.Split(h, ".")
	if len(groups) != 4 {
		return false
	}
	for _, g := range groups {
		if len(g) == 0 || len(g) > 3 {
			return false
		}
		for i := 0; i < len(g); i++ {
			if !isDigit(g[i]) {
				return false
			}
		}
	}
	return true
}

// String returns the server name as parsed.
func (s ServerName) String() string { return s.raw }

// Host returns the host part: a DNS name or IP literal, without brackets
// for IPv6.
func (s ServerName) Host() string { return s.host }

// Port returns the explicit port and true, or 0 and false if there is none.
func (s ServerName) Port() (int, bool) { return s.port, s.port != 0 }

// IsIP reports whether the host is an IP literal.
func (s ServerName) IsIP() bool { return s.ip }

// IsZero reports whether s is the zero value (not a parsed name).
func (s ServerName) IsZero() bool { return s.raw == "" }

// splitSigil checks the sigil and length of s and splits it at the first
// ':' into the localpart and the server name.
func splitSigil(s string, sigil byte, sentinel error) (local, server string, err error) {
	if len(s) > MaxLength {
		return "", "", fmt.Errorf("%w: %d bytes", ErrTooLong, len(s))
	}
	if len(s) == 0 || s[0] != sigil {
		return "", "", invalid(sentinel, s, fmt.Sprintf("must start with %q", sigil))
	}
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return "", "", invalid(sentinel, s, "missing ':' before the server name")
	}
	return s[1:i], s[i+1:], nil
}

// opaqueOK reports whether an opaque localpart (room ID, alias, historical
// user ID) is valid UTF-8 without NUL. ':' cannot occur: the caller split
// at the first one.
func opaqueOK(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// UserID is a parsed user ID, @localpart:server.
type UserID struct {
	raw        string
	local      string
	server     ServerName
	historical bool
}

// ParseUserID parses a user ID. Localparts valid only under the historical
// grammar are accepted and reported by [UserID.Historical]. Errors wrap
// [ErrInvalidUserID] or [ErrTooLong] (and the server name's error).
func ParseUserID(s string) (UserID, error) {
	local, server, err := splitSigil(s, '@', ErrInvalidUserID)
	if err != nil {
		return UserID{}, err
	}
	if !opaqueOK(local) {
		return UserID{}, invalid(ErrInvalidUserID, s, "localpart is not UTF-8 without NUL")
	}
	sn, err := ParseServerName(server)
	if err != nil {
		return UserID{}, fmt.Errorf("%w: %w", ErrInvalidUserID, err)
	}
	return UserID{raw: s, local: local, server: sn, historical: !currentLocalpart(local)}, nil
}

// currentLocalpart reports whether local fits the current grammar:
// non-empty, only a-z 0-9 . _ = - / +.
func currentLocalpart(local string) bool {
	if local == "" {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(isDigit(c) || (c >= 'a' && c <= 'z') || strings.IndexByte("._=-/+", c) >= 0) {
			return false
		}
	}
	return true
}

// String returns the user ID as parsed.
func (u UserID) String() string { return u.raw }

// Localpart returns the part between '@' and the first ':'.
func (u UserID) Localpart() string { return u.local }

// Server returns the server name.
func (u UserID) Server() ServerName { return u.server }

// Historical reports whether only the historical grammar allows the
// localpart (it is empty or has characters outside a-z 0-9 . _ = - / +).
func (u UserID) Historical() bool { return u.historical }

// RoomID is a parsed room ID: !opaque:server, or from room version 12 the
// server-less !hash form.
type RoomID struct {
	raw    string
	opaque string
	server ServerName
}

// ParseRoomID parses a room ID in either form. Errors wrap
// [ErrInvalidRoomID] or [ErrTooLong].
func ParseRoomID(s string) (RoomID, error) {
	if len(s) > MaxLength {
		return RoomID{}, fmt.Errorf("%w: %d bytes", ErrTooLong, len(s))
	}
	if len(s) == 0 || s[0] != '!' {
		return RoomID{}, invalid(ErrInvalidRoomID, s, "must start with '!'")
	}
	if strings.IndexByte(s, ':') < 0 {
		if !isHash(s[1:], urlSafeAlphabet) {
			return RoomID{}, invalid(ErrInvalidRoomID, s, "neither !opaque:server nor ! and 43 URL-safe base64 characters")
		}
		return RoomID{raw: s, opaque: s[1:]}, nil
	}
	local, server, err := splitSigil(s, '!', ErrInvalidRoomID)
	if err != nil {
		return RoomID{}, err
	}
	if !opaqueOK(local) {
		return RoomID{}, invalid(ErrInvalidRoomID, s, "opaque part is not UTF-8 without NUL")
	}
	sn, err := ParseServerName(server)
	if err != nil {
		return RoomID{}, fmt.Errorf("%w: %w", ErrInvalidRoomID, err)
	}
	return RoomID{raw: s, opaque: local, server: sn}, nil
}

// String returns the room ID as parsed.
func (r RoomID) String() string { return r.raw }

// Opaque returns the part after '!' (up to the ':' if there is a server).
func (r RoomID) Opaque() string { return r.opaque }

// Server returns the server name and true, or false for a room version 12
// room ID, which has none.
func (r RoomID) Server() (ServerName, bool) { return r.server, !r.server.IsZero() }

// EventID is a parsed event ID in one of three formats.
type EventID struct {
	raw    string
	server ServerName
}

// ParseEventID parses an event ID: $opaque:server (room versions 1-2), or
// $ and 43 characters of unpadded base64 of a sha256 hash, standard
// (version 3) or URL-safe (4 and later). Errors wrap [ErrInvalidEventID] or
// [ErrTooLong].
func ParseEventID(s string) (EventID, error) {
	if len(s) > MaxLength {
		return EventID{}, fmt.Errorf("%w: %d bytes", ErrTooLong, len(s))
	}
	if len(s) == 0 || s[0] != '$' {
		return EventID{}, invalid(ErrInvalidEventID, s, "must start with '$'")
	}
	if strings.IndexByte(s, ':') < 0 {
		if !isHash(s[1:], stdAlphabet) && !isHash(s[1:], urlSafeAlphabet) {
			return EventID{}, invalid(ErrInvalidEventID, s, "neither $opaque:server nor $ and 43 base64 characters")
		}
		return EventID{raw: s}, nil
	}
	local, server, err := splitSigil(s, '$', ErrInvalidEventID)
	if err != nil {
		return EventID{}, err
	}
	if !opaqueOK(local) {
		return EventID{}, invalid(ErrInvalidEventID, s, "opaque part is not UTF-8 without NUL")
	}
	sn, err := ParseServerName(server)
	if err != nil {
		return EventID{}, fmt.Errorf("%w: %w", ErrInvalidEventID, err)
	}
	return EventID{raw: s, server: sn}, nil
}

// String returns the event ID as parsed.
func (e EventID) String() string { return e.raw }

// Server returns the server name of a $opaque:server event ID and true, or
// false for the hash formats.
func (e EventID) Server() (ServerName, bool) { return e.server, !e.server.IsZero() }

// IsServerForm reports whether the ID is $opaque:server (room versions 1-2).
func (e EventID) IsServerForm() bool { return !e.server.IsZero() }

// IsBase64Form reports whether the ID is $ and 43 characters of standard
// unpadded base64 (room version 3).
func (e EventID) IsBase64Form() bool {
	return e.server.IsZero() && isHash(e.raw[1:], stdAlphabet)
}

// IsURLSafeForm reports whether the ID is $ and 43 characters of URL-safe
// unpadded base64 (room versions 4 and later).
func (e EventID) IsURLSafeForm() bool {
	return e.server.IsZero() && isHash(e.raw[1:], urlSafeAlphabet)
}

const (
	stdAlphabet     = "+/"
	urlSafeAlphabet = "-_"
)

// isHash reports whether s is 43 characters of unpadded base64 with the
// given two extra characters, as a 32-byte hash encodes to. The last
// character carries 2 bits of padding, which must be zero.
func isHash(s, extra string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == extra[0] || c == extra[1]) {
			return false
		}
	}
	return strings.IndexByte("AEIMQUYcgkosw048", s[42]) >= 0
}

// RoomAlias is a parsed room alias, #localpart:server.
type RoomAlias struct {
	raw    string
	local  string
	server ServerName
}

// ParseRoomAlias parses a room alias. Errors wrap [ErrInvalidAlias] or
// [ErrTooLong].
func ParseRoomAlias(s string) (RoomAlias, error) {
	local, server, err := splitSigil(s, '#', ErrInvalidAlias)
	if err != nil {
		return RoomAlias{}, err
	}
	if !opaqueOK(local) {
		return RoomAlias{}, invalid(ErrInvalidAlias, s, "localpart is not UTF-8 without NUL")
	}
	sn, err := ParseServerName(server)
	if err != nil {
		return RoomAlias{}, fmt.Errorf("%w: %w", ErrInvalidAlias, err)
	}
	return RoomAlias{raw: s, local: local, server: sn}, nil
}

// String returns the alias as parsed.
func (a RoomAlias) String() string { return a.raw }

// Localpart returns the part between '#' and the first ':'.
func (a RoomAlias) Localpart() string { return a.local }

// Server returns the server name.
func (a RoomAlias) Server() ServerName { return a.server }

// KeyID is a parsed signing key ID, algorithm:version, such as
// "ed25519:abc_1".
type KeyID struct {
	raw string
	sep int
}

// ParseKeyID parses a key ID: a non-empty algorithm of [a-z0-9_], ':', and
// a non-empty version of [a-zA-Z0-9_]. Errors wrap [ErrInvalidKeyID] or
// [ErrTooLong].
func ParseKeyID(s string) (KeyID, error) {
	if len(s) > MaxLength {
		return KeyID{}, fmt.Errorf("%w: %d bytes", ErrTooLong, len(s))
	}
	i := strings.IndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return KeyID{}, invalid(ErrInvalidKeyID, s, "want algorithm:version")
	}
	for j := 0; j < len(s); j++ {
		c := s[j]
		if j == i {
			continue
		}
		ok := isDigit(c) || (c >= 'a' && c <= 'z') || c == '_' || (j > i && c >= 'A' && c <= 'Z')
		if !ok {
			return KeyID{}, invalid(ErrInvalidKeyID, s, fmt.Sprintf("bad character %q", c))
		}
	}
	return KeyID{raw: s, sep: i}, nil
}

// String returns the key ID as parsed.
func (k KeyID) String() string { return k.raw }

// Algorithm returns the part before ':', such as "ed25519".
func (k KeyID) Algorithm() string { return k.raw[:k.sep] }

// Version returns the part after ':'.
func (k KeyID) Version() string { return k.raw[k.sep+1:] }

package inbound

import (
	"net/netip"
	"strings"

	"github.com/tidwall/gjson"
)

// ServerAllowed evaluates the content of an m.room.server_acl event for
// serverName (server-server API, "Server Access Control Lists"): the port
// is ignored; an IP literal is denied when allow_ip_literals is false (it
// defaults to true when missing or not a boolean); a name matching a deny
// glob is denied; one matching an allow glob is allowed; anything else is
// denied (allow defaults to the empty list). Globs use * (any run of
// characters) and ? (one character) and match the whole name, ignoring
// ASCII case as Synapse does. Entries that are not strings are ignored.
// A nil content (no ACL in the room) allows every server; content that
// is not a JSON object denies every server.
func ServerAllowed(content []byte, serverName string) bool {
	if content == nil {
		return true
	}
	acl := gjson.ParseBytes(content)
	if !gjson.ValidBytes(content) || !acl.IsObject() {
		return false
	}
	host := hostOf(serverName)
	if ip := acl.Get("allow_ip_literals"); ip.Type == gjson.False && isIPLiteral(host) {
		return false
	}
	if matchAny(acl.Get("deny"), host) {
		return false
	}
	return matchAny(acl.Get("allow"), host)
}

// hostOf strips the port of a server name.
func hostOf(name string) string {
	if strings.HasPrefix(name, "[") {
		if i := strings.IndexByte(name, ']'); i >= 0 {
			return name[:i+1]
		}
		return name
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

func isIPLiteral(host string) bool {
	if strings.HasPrefix(host, "[") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

func matchAny(list gjson.Result, host string) bool {
	if !list.IsArray() {
		return false
	}
	found := false
	list.ForEach(func(_, v gjson.Result) bool {
		if v.Type == gjson.String && globMatch(strings.ToLower(v.Str), strings.ToLower(host)) {
			found = true
			return false
		}
		return true
	})
	return found
}

// globMatch matches s against a glob of * and ?, in O(len(p)*len(s)) at
// worst (backtracking to the last star only).
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

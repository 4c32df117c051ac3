package eventauth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/sjson"

	"github.com/gomatrixlib/gomatrixlib/event"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

// A vector file (testdata/*.vectors) holds cases separated by "=== name"
// lines. Each case has:
//
//	versions: 1-12            room versions it runs in (default 1-12)
//	mode: auth                optional: check only against the event's
//	                          auth events (for the auth events rules)
//	state:                    lines building the room, in order
//	event:                    one line: the event under check
//	expect A-B: ok RULE       verdict and deciding rule per version range
//	expect A-B: rejected RULE FAMILY
//	expect A-B: bad-event RULE  event.Parse refuses the event: the event
//	                          format of the version enforces the rule
//
// Every version in "versions" must be covered by exactly one expect line.
// Event lines are "KIND ARGS... [JSON] [| options]":
//
//	create SENDER [CONTENT]          (default content {"creator": SENDER})
//	member SENDER TARGET MEMBERSHIP [EXTRA CONTENT]
//	pl SENDER CONTENT
//	joinrule SENDER RULE [EXTRA CONTENT]
//	state TYPE SENDER STATE_KEY [CONTENT]     ("-" is the empty state key)
//	msg SENDER [CONTENT]                       (m.room.message)
//	event TYPE SENDER [CONTENT]                (any non-state event)
//	redact SENDER N                            (redacts state line N)
//
// A state line "room RULE" stands for four lines: alice's create event, her
// join, power levels giving her 100 (nothing in version 12, where she is a
// creator) and the join rule RULE; they are state lines 0 to 3.
//
// Options: addroomid (set a room_id on a create event), prev=N,M (prev_events: state lines), auth=N,M or auth=none
// (auth_events), authadd=N (cite state line N as well), room=ID (room ID),
// cosign=SERVER (also signed by SERVER), rejected=N (state line N counts
// as a rejected event for the auth events rules). A state line starting with "!" is
// not required to pass the rules itself.
type vector struct {
	file, name string
	versions   []int
	authOnly   bool
	state      []string
	event      string
	expect     map[int]expectation
}

type expectation struct {
	ok     bool
	rule   string
	family string
	// badEvent: event.Parse refuses the event (the room version's event
	// format already enforces rule "rule").
	badEvent bool
}

func familySentinel(name string) (error, bool) {
	m := map[string]error{
		"create": ErrCreate, "roomid": ErrRoomID, "authevents": ErrAuthEvents, "federate": ErrFederate,
		"aliases": ErrAliases, "membership": ErrMembership, "authorisedvia": ErrAuthorisedVia,
		"join": ErrJoin, "invite": ErrInvite, "thirdpartyinvite": ErrThirdPartyInvite, "leave": ErrLeave,
		"ban": ErrBan, "knock": ErrKnock, "notjoined": ErrNotJoined, "tpilevel": ErrThirdPartyInviteLevel,
		"powerlevel": ErrPowerLevel, "statekey": ErrStateKey, "powerlevels": ErrPowerLevels,
		"redaction": ErrRedaction,
	}
	e, ok := m[name]
	return e, ok
}

func parseRange(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, found := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("bad version range %q", s)
		}
		b := a
		if found {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad version range %q", s)
			}
		}
		for v := a; v <= b; v++ {
			out = append(out, v)
		}
	}
	return out, nil
}

func loadVectors(t testing.TB) []*vector {
	t.Helper()
	files, err := filepath.Glob("testdata/*.vectors")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files in testdata: %v", err)
	}
	var out []*vector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		vs, err := parseVectors(filepath.Base(f), string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, vs...)
	}
	return out
}

func parseVectors(file, text string) ([]*vector, error) {
	var out []*vector
	var cur *vector
	section := ""
	finish := func() error {
		if cur == nil {
			return nil
		}
		if cur.event == "" {
			return fmt.Errorf("case %q has no event", cur.name)
		}
		if cur.versions == nil {
			cur.versions, _ = parseRange("1-12")
		}
		for _, v := range cur.versions {
			if _, ok := cur.expect[v]; !ok {
				return fmt.Errorf("case %q has no expectation for room version %d", cur.name, v)
			}
		}
		out = append(out, cur)
		return nil
	}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("line %d", n+1)
		switch {
		case strings.HasPrefix(line, "=== "):
			if err := finish(); err != nil {
				return nil, err
			}
			cur = &vector{file: file, name: strings.TrimPrefix(line, "=== "), expect: map[int]expectation{}}
			section = ""
		case cur == nil:
			return nil, fmt.Errorf("%s: text before the first case", where)
		case strings.HasPrefix(line, "versions:"):
			vs, err := parseRange(strings.TrimSpace(strings.TrimPrefix(line, "versions:")))
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			cur.versions = vs
		case line == "mode: auth":
			cur.authOnly = true
		case line == "state:" || line == "event:":
			section = strings.TrimSuffix(line, ":")
		case strings.HasPrefix(line, "expect "):
			rng, verdict, ok := strings.Cut(strings.TrimPrefix(line, "expect "), ":")
			if !ok {
				return nil, fmt.Errorf("%s: bad expect line", where)
			}
			vs, err := parseRange(rng)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			f := strings.Fields(verdict)
			var e expectation
			switch {
			case len(f) == 2 && f[0] == "ok":
				e = expectation{ok: true, rule: f[1]}
			case len(f) == 2 && f[0] == "bad-event":
				e = expectation{rule: f[1], badEvent: true}
			case len(f) == 3 && f[0] == "rejected":
				if _, known := familySentinel(f[2]); !known {
					return nil, fmt.Errorf("%s: unknown rule family %q", where, f[2])
				}
				e = expectation{rule: f[1], family: f[2]}
			default:
				return nil, fmt.Errorf("%s: bad verdict %q", where, verdict)
			}
			for _, v := range vs {
				if _, dup := cur.expect[v]; dup {
					return nil, fmt.Errorf("%s: room version %d expected twice", where, v)
				}
				cur.expect[v] = e
			}
		case section == "state" && strings.HasPrefix(line, "room "):
			// The usual room: alice creates it, joins, has level 100 (is
			// a creator in version 12) and sets the join rule.
			jr := strings.TrimSpace(strings.TrimPrefix(line, "room "))
			cur.state = append(cur.state,
				"create @alice:a.test",
				"member @alice:a.test @alice:a.test join",
				`pl @alice:a.test {"users":{"$creator":100}}`,
				"joinrule @alice:a.test "+jr)
		case section == "state":
			cur.state = append(cur.state, line)
		case section == "event":
			if cur.event != "" {
				return nil, fmt.Errorf("%s: a case has one event", where)
			}
			cur.event = line
		default:
			return nil, fmt.Errorf("%s: unexpected %q", where, line)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// parseLine turns an event line into a spec. indices resolves "N" to the
// ID of state line N.
func parseLine(r *testRoom, line string, ids []string) (eventSpec, error) {
	line, opts, _ := strings.Cut(line, " | ")
	var spec eventSpec
	fields, content := splitContent(line)
	if len(fields) < 2 {
		return spec, fmt.Errorf("short line %q", line)
	}
	kind, sender := fields[0], fields[1]
	spec.Sender = sender
	need := func(n int) error {
		if len(fields) != n {
			return fmt.Errorf("%s needs %d fields: %q", kind, n, line)
		}
		return nil
	}
	switch kind {
	case "create":
		if err := need(2); err != nil {
			return spec, err
		}
		spec.Type, spec.StateKey = typeCreate, sk("")
		if content == "" {
			content = mustJSON(map[string]string{"creator": sender})
		}
	case "member":
		if err := need(4); err != nil {
			return spec, err
		}
		spec.Type, spec.StateKey = typeMember, sk(fields[2])
		if content == "" {
			content = "{}"
		}
		c, err := sjson.Set(content, "membership", fields[3])
		if err != nil {
			return spec, err
		}
		content = c
	case "pl":
		if err := need(2); err != nil {
			return spec, err
		}
		spec.Type, spec.StateKey = typePowerLevels, sk("")
	case "joinrule":
		if err := need(3); err != nil {
			return spec, err
		}
		spec.Type, spec.StateKey = typeJoinRules, sk("")
		if content == "" {
			content = "{}"
		}
		c, err := sjson.Set(content, "join_rule", fields[2])
		if err != nil {
			return spec, err
		}
		content = c
	case "state":
		if len(fields) != 4 {
			return spec, fmt.Errorf("state needs TYPE SENDER STATE_KEY: %q", line)
		}
		spec.Type, spec.Sender = fields[1], fields[2]
		k := fields[3]
		if k == "-" {
			k = ""
		}
		spec.StateKey = sk(k)
	case "msg":
		if err := need(2); err != nil {
			return spec, err
		}
		spec.Type = "m.room.message"
		if content == "" {
			content = `{"msgtype":"m.text","body":"hello"}`
		}
	case "event":
		if len(fields) != 3 {
			return spec, fmt.Errorf("event needs TYPE SENDER: %q", line)
		}
		spec.Type, spec.Sender = fields[1], fields[2]
	case "redact":
		if err := need(3); err != nil {
			return spec, err
		}
		n, err := strconv.Atoi(fields[2])
		if err != nil || n < 0 || n >= len(ids) {
			return spec, fmt.Errorf("bad redaction target %q", fields[2])
		}
		spec.Type, spec.Redacts = typeRedaction, ids[n]
	default:
		return spec, fmt.Errorf("unknown line kind %q", kind)
	}
	spec.Content = content
	ref := func(list string) ([]string, error) {
		if list == "none" {
			return []string{}, nil
		}
		var out []string
		for _, s := range strings.Split(list, ",") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n >= len(ids) {
				return nil, fmt.Errorf("bad state line reference %q", s)
			}
			out = append(out, ids[n])
		}
		return out, nil
	}
	var authAdd []string
	for _, o := range strings.Fields(opts) {
		k, v, _ := strings.Cut(o, "=")
		var err error
		switch k {
		case "prev":
			spec.Prev, err = ref(v)
		case "auth":
			spec.Auth, err = ref(v)
		case "authadd":
			authAdd, err = ref(v)
		case "room":
			spec.RoomID = v
		case "cosign":
			spec.Cosign = append(spec.Cosign, v)
		case "addroomid":
			spec.AddRoomID = true
		case "rejected":
			spec.Rejected, err = ref(v)
		default:
			err = fmt.Errorf("unknown option %q", o)
		}
		if err != nil {
			return spec, err
		}
	}
	if authAdd != nil {
		stateKey := ""
		if spec.StateKey != nil {
			stateKey = *spec.StateKey
		}
		content := r.expand(spec.Content)
		if content == "" {
			content = "{}"
		}
		for _, ev := range r.state.Select(AuthEventsNeeded(r.rules, spec.Type, stateKey, spec.Sender, []byte(content))) {
			spec.Auth = append(spec.Auth, ev.EventID())
		}
		spec.Auth = append(spec.Auth, authAdd...)
	}
	return spec, nil
}

// splitContent splits "a b c {json}" into fields and the JSON part.
func splitContent(line string) ([]string, string) {
	if i := strings.IndexByte(line, '{'); i >= 0 {
		return strings.Fields(line[:i]), strings.TrimSpace(line[i:])
	}
	return strings.Fields(line), ""
}

func TestVectors(t *testing.T) {
	vectors := loadVectors(t)
	covered := map[string]bool{} // "version rule verdict"
	for _, vec := range vectors {
		for _, v := range vec.versions {
			rules, err := roomversion.Get(strconv.Itoa(v))
			if err != nil {
				t.Fatal(err)
			}
			exp := vec.expect[v]
			t.Run(fmt.Sprintf("%s/%s/v%d", strings.TrimSuffix(vec.file, ".vectors"), vec.name, v), func(t *testing.T) {
				t.Parallel()
				runVector(t, vec, rules, exp)
			})
			covered[fmt.Sprintf("%d %s %v", v, exp.rule, exp.ok)] = true
		}
	}
	checkCoverage(t, covered)
}

func runVector(t *testing.T, vec *vector, rules roomversion.Rules, exp expectation) {
	r := newTestRoom(t, rules)
	var ids []string
	for i, line := range vec.state {
		forced := strings.HasPrefix(line, "!")
		spec, err := parseLine(r, strings.TrimPrefix(line, "!"), ids)
		if err != nil {
			t.Fatalf("%s: state line %d: %v", vec.file, i, err)
		}
		ev := r.build(spec)
		if !forced && r.create != nil {
			if _, err := CheckAuthEvents(ev, r.authEventsOf(ev), Options{Create: r.create}); err != nil {
				t.Fatalf("state line %d (%s) is itself rejected: %v", i, line, err)
			}
		}
		r.add(ev)
		ids = append(ids, ev.EventID())
	}
	spec, err := parseLine(r, vec.event, ids)
	if err != nil {
		t.Fatalf("%s: event line: %v", vec.file, err)
	}
	ev, err := r.tryBuild(spec)
	if exp.badEvent {
		if !errors.Is(err, event.ErrBadField) && !errors.Is(err, event.ErrMissingField) {
			t.Fatalf("want event.Parse to refuse the event (rule %s), got %v", exp.rule, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("building the event: %v", err)
	}

	check := func(name string, rule string, err error) {
		t.Helper()
		if exp.ok {
			if err != nil {
				t.Fatalf("%s: want allowed by rule %s, got %v", name, exp.rule, err)
			}
			if rule != exp.rule {
				t.Fatalf("%s: allowed by rule %s, want rule %s", name, rule, exp.rule)
			}
			return
		}
		if err == nil {
			t.Fatalf("%s: allowed by rule %s, want rejection by rule %s", name, rule, exp.rule)
		}
		var ae *Error
		if !errors.As(err, &ae) {
			t.Fatalf("%s: error %v is not an *Error", name, err)
		}
		if ae.Rule != exp.rule || rule != exp.rule {
			t.Fatalf("%s: rejected by rule %s (%v), want rule %s", name, ae.Rule, err, exp.rule)
		}
		if ae.RoomVersion != rules.ID || ae.Reason == "" {
			t.Fatalf("%s: error lacks version or reason: %+v", name, ae)
		}
		fam, _ := familySentinel(exp.family)
		if !errors.Is(err, fam) || !errors.Is(err, ErrRejected) {
			t.Fatalf("%s: %v does not match family %s", name, err, exp.family)
		}
		if !errors.Is(err, &Error{Rule: exp.rule}) {
			t.Fatalf("%s: errors.Is with the rule code fails", name)
		}
	}

	opts := Options{Create: r.create}
	if len(spec.Rejected) > 0 {
		opts.Rejected = func(id string) bool {
			for _, x := range spec.Rejected {
				if x == id {
					return true
				}
			}
			return false
		}
	}
	rule, err := CheckAuthEvents(ev, r.authEventsOf(ev), opts)
	check("auth events", rule, err)
	if vec.authOnly {
		return
	}
	rule, err = CheckWithOptions(ev, r.state, Options{})
	check("state", rule, err)
	if err2 := Check(ev, r.state); (err2 == nil) != (err == nil) {
		t.Fatalf("Check and CheckWithOptions disagree: %v vs %v", err2, err)
	}
}

// checkCoverage asserts that every rule of the spec for room versions 1, 6,
// 8, 10, 11 and 12 has a vector that ends at it, both allowing (for the
// "allow" rules) or rejecting (for the "reject" rules), and, for each
// conditional rule, a vector that passes it and reaches a later rule.
func checkCoverage(t *testing.T, covered map[string]bool) {
	for _, v := range []int{1, 6, 8, 10, 11, 12} {
		rules, _ := roomversion.Get(strconv.Itoa(v))
		for r := rule(1); r < numRules; r++ {
			code, _, ok := ruleCode(&rules, r)
			if !ok || !isLeafRule(r) {
				continue
			}
			allowing, rejecting := ruleOutcomes(r)
			if allowing && !covered[fmt.Sprintf("%d %s true", v, code)] {
				t.Errorf("room version %d: no vector is allowed by rule %s", v, code)
			}
			if rejecting && !covered[fmt.Sprintf("%d %s false", v, code)] {
				t.Errorf("room version %d: no vector is rejected by rule %s", v, code)
			}
		}
	}
}

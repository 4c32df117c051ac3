package canonicaljson

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// MaxDepth is the deepest nesting of arrays and objects accepted. The
// outermost value is at depth 1. Matrix events nest a handful of levels;
// the limit exists so that hostile input cannot make the encoder's stacks
// grow without bound.
const MaxDepth = 256

// Sentinel errors. Every error returned by this package wraps one of them,
// usually inside a [*SyntaxError] that carries the byte offset.
var (
	// ErrSyntax: the input is not JSON (RFC 8259), or NaN/Infinity literals.
	ErrSyntax = errors.New("canonicaljson: invalid JSON")
	// ErrInvalidUTF8: a string holds bytes that are not valid UTF-8.
	ErrInvalidUTF8 = errors.New("canonicaljson: invalid UTF-8")
	// ErrSurrogate: a \u escape is a lone or mis-paired UTF-16 surrogate.
	ErrSurrogate = errors.New("canonicaljson: lone or mis-paired surrogate escape")
	// ErrDuplicateKey: an object has the same key twice (after decoding
	// escapes), which would make its meaning depend on the parser.
	ErrDuplicateKey = errors.New("canonicaljson: duplicate object key")
	// ErrTooDeep: arrays and objects nest deeper than [MaxDepth].
	ErrTooDeep = errors.New("canonicaljson: nesting too deep")
	// ErrTrailingData: there is something other than whitespace after the
	// first JSON value.
	ErrTrailingData = errors.New("canonicaljson: trailing data after JSON value")
	// ErrNumberRange: in strict mode, an integer outside
	// [-(2^53)+1, 2^53-1]; in either mode, a number whose exponent is too
	// large to write out as a plain integer.
	ErrNumberRange = errors.New("canonicaljson: number out of range")
	// ErrFloat: in strict mode, a number with a fraction or exponent.
	ErrFloat = errors.New("canonicaljson: number is not an integer")
)

// SyntaxError reports where in the input a problem was found.
type SyntaxError struct {
	// Offset is the byte offset in the input at which the problem starts.
	Offset int64
	// Err is one of the package's sentinel errors.
	Err error
	msg string
}

// Error describes the problem and its byte offset.
func (e *SyntaxError) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("%v at byte offset %d: %s", e.Err, e.Offset, e.msg)
	}
	return fmt.Sprintf("%v at byte offset %d", e.Err, e.Offset)
}

// Unwrap returns the sentinel error.
func (e *SyntaxError) Unwrap() error { return e.Err }

// Options adjust [Append].
type Options struct {
	// Strict applies the rules room versions 6 and later enforce on
	// events: every number must be an integer written without fraction or
	// exponent, within [-(2^53)+1, 2^53-1].
	Strict bool
	// Omit lists keys of the top-level object that are left out of the
	// output (for example "signatures" and "unsigned" when signing). It has
	// no effect on nested objects or when the input is not an object.
	Omit []string
}

// Canonicalize returns the canonical form of the JSON text in, in lenient
// mode: numbers are accepted as JSON allows them. A number whose value is an
// integer is written as a plain integer (so -0 becomes 0 and 1e10 becomes
// 10000000000, as the spec's examples show), whatever its size; a number
// with a non-zero fractional part is copied as written. Lenient mode is for
// events of room versions 1 to 5, which the spec says must not be rejected
// for such numbers: servers must still hash and sign them the same way, and
// copying what cannot be normalised exactly (without float rounding) is the
// only choice that keeps an event's bytes, and so its hashes, meaning the
// same everywhere.
//
// Errors wrap [ErrSyntax], [ErrInvalidUTF8], [ErrSurrogate],
// [ErrDuplicateKey], [ErrTooDeep], [ErrTrailingData] or [ErrNumberRange].
func Canonicalize(in []byte) ([]byte, error) {
	// Twice the input: the output is never longer than the input (bar
	// lenient numbers written out), and sorting an object uses the spare
	// room after it.
	return Append(make([]byte, 0, 2*len(in)), in, Options{})
}

// CanonicalizeStrict is [Canonicalize] with the number rules of room
// versions 6 and later: it also returns errors wrapping [ErrFloat] and
// [ErrNumberRange].
func CanonicalizeStrict(in []byte) ([]byte, error) {
	return Append(make([]byte, 0, 2*len(in)), in, Options{Strict: true})
}

// Append appends the canonical form of in to dst and returns the extended
// buffer. On error dst is returned unchanged in length (its spare capacity
// may have been written to).
func Append(dst, in []byte, opts Options) ([]byte, error) {
	// The encoder is recursive, so it lives on the heap: one allocation
	// per call, with room inside for the usual stacks.
	e := &encoder{in: in, out: dst, strict: opts.Strict, omit: opts.Omit}
	e.members = e.memberBuf[:0]
	e.keys = e.keyBuf[:0]
	e.order = e.orderBuf[:0]
	if len(in) > 8<<10 {
		// Size the stacks for large inputs once rather than growing them
		// step by step.
		e.members = make([]member, 0, len(in)/32)
		e.keys = make([]byte, 0, len(in)/2)
		e.order = make([]sortKey, 0, len(in)/32)
	}
	base := len(dst)
	e.skipSpace()
	if err := e.value(0); err != nil {
		return dst[:base], err
	}
	e.skipSpace()
	if e.pos < len(e.in) {
		return dst[:base], e.fail(e.pos, ErrTrailingData, "")
	}
	return e.out, nil
}

// scratchPool holds buffers for reordering object bodies that do not fit
// in the output's spare capacity.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

// member is one key/value pair of an object being encoded. Offsets into
// out delimit the pair (from the opening quote of the key to the end of the
// value); key offsets point into keys, which holds decoded key bytes.
type member struct {
	start, end       int
	keyStart, keyEnd int
}

// sortKey orders members: 8 key bytes past the object's common key prefix
// and the member's index. Sorting these 16-byte values moves less memory
// than sorting members.
type sortKey struct {
	pfx uint64
	i   int
}

type encoder struct {
	in     []byte
	pos    int
	out    []byte
	strict bool
	omit   []string

	members []member
	keys    []byte
	order   []sortKey

	memberBuf [32]member
	keyBuf    [512]byte
	orderBuf  [32]sortKey
}

func (e *encoder) fail(off int, sentinel error, msg string) error {
	return &SyntaxError{Offset: int64(off), Err: sentinel, msg: msg}
}

func (e *encoder) skipSpace() {
	for e.pos < len(e.in) {
		switch e.in[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}

func (e *encoder) value(depth int) error {
	if e.pos >= len(e.in) {
		return e.fail(e.pos, ErrSyntax, "unexpected end of input")
	}
	switch c := e.in[e.pos]; {
	case c == '{':
		if depth+1 > MaxDepth {
			return e.fail(e.pos, ErrTooDeep, "")
		}
		return e.object(depth + 1)
	case c == '[':
		if depth+1 > MaxDepth {
			return e.fail(e.pos, ErrTooDeep, "")
		}
		return e.array(depth + 1)
	case c == '"':
		return e.string(nil)
	case c == '-' || (c >= '0' && c <= '9'):
		return e.number()
	case c == 't':
		return e.literal("true")
	case c == 'f':
		return e.literal("false")
	case c == 'n':
		return e.literal("null")
	default:
		return e.fail(e.pos, ErrSyntax, fmt.Sprintf("unexpected character %q", c))
	}
}

func (e *encoder) literal(lit string) error {
	if len(e.in)-e.pos < len(lit) || string(e.in[e.pos:e.pos+len(lit)]) != lit {
		return e.fail(e.pos, ErrSyntax, "invalid literal")
	}
	e.out = append(e.out, lit...)
	e.pos += len(lit)
	return nil
}

func (e *encoder) array(depth int) error {
	e.out = append(e.out, '[')
	e.pos++
	e.skipSpace()
	if e.pos < len(e.in) && e.in[e.pos] == ']' {
		e.pos++
		e.out = append(e.out, ']')
		return nil
	}
	for {
		e.skipSpace()
		if err := e.value(depth); err != nil {
			return err
		}
		e.skipSpace()
		if e.pos >= len(e.in) {
			return e.fail(e.pos, ErrSyntax, "unterminated array")
		}
		switch e.in[e.pos] {
		case ',':
			e.pos++
			e.out = append(e.out, ',')
		case ']':
			e.pos++
			e.out = append(e.out, ']')
			return nil
		default:
			return e.fail(e.pos, ErrSyntax, "expected ',' or ']' in array")
		}
	}
}

func (e *encoder) omitted(key []byte) bool {
	for _, k := range e.omit {
		if k == string(key) {
			return true
		}
	}
	return false
}

func (e *encoder) object(depth int) error {
	objStart := len(e.out)
	e.out = append(e.out, '{')
	e.pos++
	base := len(e.members)
	keysBase := len(e.keys)
	defer func() {
		e.members = e.members[:base]
		e.keys = e.keys[:keysBase]
	}()
	e.skipSpace()
	if e.pos < len(e.in) && e.in[e.pos] == '}' {
		e.pos++
		e.out = append(e.out, '}')
		return nil
	}
	topLevel := depth == 1 && len(e.omit) > 0
	sorted := true
	kept := 0
	for {
		e.skipSpace()
		if e.pos >= len(e.in) || e.in[e.pos] != '"' {
			return e.fail(e.pos, ErrSyntax, "expected string object key")
		}
		keyOff := e.pos
		if kept > 0 {
			e.out = append(e.out, ',')
		}
		m := member{start: len(e.out), keyStart: len(e.keys)}
		if err := e.string(&e.keys); err != nil {
			return err
		}
		m.keyEnd = len(e.keys)
		e.skipSpace()
		if e.pos >= len(e.in) || e.in[e.pos] != ':' {
			return e.fail(e.pos, ErrSyntax, "expected ':' after object key")
		}
		e.pos++
		e.out = append(e.out, ':')
		e.skipSpace()
		if err := e.value(depth); err != nil {
			return err
		}
		m.end = len(e.out)
		key := e.keys[m.keyStart:m.keyEnd]
		if n := len(e.members); n > base {
			prev := e.members[n-1]
			switch bytes.Compare(e.keys[prev.keyStart:prev.keyEnd], key) {
			case 0:
				return e.fail(keyOff, ErrDuplicateKey, fmt.Sprintf("key %q", key))
			case 1:
				sorted = false
			}
		}
		if topLevel && e.omitted(key) {
			// Drop the pair, and the comma before it if one was written.
			if kept > 0 {
				e.out = e.out[:m.start-1]
			} else {
				e.out = e.out[:m.start]
			}
			// Keep the key for the duplicate check, as a member that
			// writes nothing.
			m.start, m.end = -1, -1
		} else {
			kept++
		}
		e.members = append(e.members, m)
		e.skipSpace()
		if e.pos >= len(e.in) {
			return e.fail(e.pos, ErrSyntax, "unterminated object")
		}
		if e.in[e.pos] == ',' {
			e.pos++
			continue
		}
		if e.in[e.pos] != '}' {
			return e.fail(e.pos, ErrSyntax, "expected ',' or '}' in object")
		}
		e.pos++
		break
	}
	ms := e.members[base:]
	var order []sortKey
	if !sorted {
		keys := e.keys
		order = sortKeys(e.order[:0], ms, keys)
		e.order = order
		slices.SortFunc(order, func(a, b sortKey) int {
			if a.pfx != b.pfx {
				if a.pfx < b.pfx {
					return -1
				}
				return 1
			}
			ma, mb := ms[a.i], ms[b.i]
			return bytes.Compare(keys[ma.keyStart:ma.keyEnd], keys[mb.keyStart:mb.keyEnd])
		})
		for i := 1; i < len(order); i++ {
			ma, mb := ms[order[i-1].i], ms[order[i].i]
			if bytes.Equal(keys[ma.keyStart:ma.keyEnd], keys[mb.keyStart:mb.keyEnd]) {
				return e.fail(objStart, ErrDuplicateKey, fmt.Sprintf("key %q", keys[mb.keyStart:mb.keyEnd]))
			}
		}
	}
	if !sorted {
		// Rewrite the object body in key order: write the members in
		// order after the body when out has the spare capacity, else in
		// a pooled scratch buffer (growing out would copy all of it), then
		// move them over the body. Omitted members have already been cut
		// out of out; the rest are spread over the body in input order,
		// separated by commas.
		bodyStart, bodyEnd := objStart+1, len(e.out)
		var scratch *[]byte
		dst := e.out[bodyEnd:bodyEnd]
		if cap(e.out)-bodyEnd < bodyEnd-bodyStart {
			scratch = scratchPool.Get().(*[]byte)
			dst = (*scratch)[:0]
		}
		first := true
		for _, o := range order {
			m := ms[o.i]
			if m.start < 0 {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, e.out[m.start:m.end]...)
		}
		copy(e.out[bodyStart:], dst)
		if scratch != nil {
			if cap(dst) <= 1<<20 {
				*scratch = dst
				scratchPool.Put(scratch)
			}
		}
	}
	e.out = append(e.out, '}')
	return nil
}

// sortKeys returns, for each member, the 8 bytes of its key that follow
// the prefix all keys of the object share (big-endian, zero-padded) and its
// index, so that most comparisons while sorting are one integer
// comparison. Equal prefixes fall back to comparing whole keys, so the
// order is exactly byte order, which is code point order for UTF-8.
func sortKeys(dst []sortKey, ms []member, keys []byte) []sortKey {
	first := keys[ms[0].keyStart:ms[0].keyEnd]
	common := len(first)
	for _, m := range ms[1:] {
		k := keys[m.keyStart:m.keyEnd]
		n := min(common, len(k))
		i := 0
		for i < n && k[i] == first[i] {
			i++
		}
		common = i
		if common == 0 {
			break
		}
	}
	for idx, m := range ms {
		k := keys[m.keyStart:m.keyEnd]
		var p uint64
		for j := 0; j < 8; j++ {
			p <<= 8
			if common+j < len(k) {
				p |= uint64(k[common+j])
			}
		}
		dst = append(dst, sortKey{pfx: p, i: idx})
	}
	return dst
}

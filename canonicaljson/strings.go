package canonicaljson

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// special[b] is true for the bytes that end a run copied unchanged: '"',
// '\\' and control characters. Read-only.
var special = func() (t [256]bool) {
	for b := range 0x20 {
		t[b] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// special8 reports whether one of the eight bytes packed in w is special.
// The tests are exact for any byte values: (x - 0x01..01) & ^x & 0x80..80
// is non-zero exactly when some byte of x is zero, and with 0x20 in place
// of 0x01, when some byte is below 0x20 (the lowest such byte is flagged,
// and no byte wraps, so none is flagged, when there is none).
func special8(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	below := (w - 0x20*ones) & ^w & highs
	quote := w ^ '"'*ones
	backslash := w ^ '\\'*ones
	hasQuote := (quote - ones) & ^quote & highs
	hasBackslash := (backslash - ones) & ^backslash & highs
	return below|hasQuote|hasBackslash != 0
}

// validPrefix returns the length of the longest prefix of b that is valid
// UTF-8 by the rules of utf8Len.
func validPrefix(b []byte) int {
	i := 0
	for i < len(b) {
		if b[i] < 0x80 {
			i++
			continue
		}
		n := utf8Len(b[i:])
		if n == 0 {
			return i
		}
		i += n
	}
	return i
}

const hexDigits = "0123456789abcdef"

// appendRune appends r to out as it appears inside a canonical string.
func appendRune(out []byte, r rune) []byte {
	switch {
	case r == '"':
		return append(out, '\\', '"')
	case r == '\\':
		return append(out, '\\', '\\')
	case r >= 0x20:
		return utf8.AppendRune(out, r)
	case r == '\b':
		return append(out, '\\', 'b')
	case r == '\f':
		return append(out, '\\', 'f')
	case r == '\n':
		return append(out, '\\', 'n')
	case r == '\r':
		return append(out, '\\', 'r')
	case r == '\t':
		return append(out, '\\', 't')
	default:
		return append(out, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
}

// string encodes the JSON string at e.pos. If key is not nil the decoded
// bytes are appended to it as well.
func (e *encoder) string(key *[]byte) error {
	in := e.in
	start := e.pos
	i := start + 1
	// Work on local copies of the buffers and store them back once: the
	// encoder lives on the heap, and every store of a slice header into it
	// costs a write barrier while the GC runs.
	out := append(e.out, '"')
	var kb []byte
	if key != nil {
		kb = *key
	}
	for {
		// Find the longest run of bytes copied unchanged: everything up to
		// a '"', '\\' or control character, provided it is valid UTF-8
		// (those three are ASCII, so no multi-byte sequence spans them).
		j := i
		for j+8 <= len(in) && !special8(binary.LittleEndian.Uint64(in[j:])) {
			j += 8
		}
		for j < len(in) && !special[in[j]] {
			j++
		}
		if !utf8.Valid(in[i:j]) {
			j = i + validPrefix(in[i:j]) // stop at the bad byte
		}
		if j > i {
			out = append(out, in[i:j]...)
			if key != nil {
				kb = append(kb, in[i:j]...)
			}
			i = j
		}
		if i >= len(in) {
			e.out = out
			return e.fail(start, ErrSyntax, "unterminated string")
		}
		c := in[i]
		switch {
		case c == '"':
			e.out = append(out, '"')
			if key != nil {
				*key = kb
			}
			e.pos = i + 1
			return nil
		case c == '\\':
			r, n, err := e.escape(i)
			if err != nil {
				e.out = out
				return err
			}
			out = appendRune(out, r)
			if key != nil {
				kb = utf8.AppendRune(kb, r)
			}
			i += n
		case c < 0x20:
			e.out = out
			return e.fail(i, ErrSyntax, "control character in string")
		default: // a byte >= 0x80 that does not start valid UTF-8
			e.out = out
			return e.fail(i, ErrInvalidUTF8, "")
		}
	}
}

// utf8Len returns the length of the valid UTF-8 sequence (2 to 4 bytes) at
// the start of b, or 0 if b does not start with one. Overlong forms,
// surrogates and code points above U+10FFFF are invalid.
func utf8Len(b []byte) int {
	c := b[0]
	switch {
	case c >= 0xc2 && c <= 0xdf:
		if len(b) >= 2 && b[1]&0xc0 == 0x80 {
			return 2
		}
	case c >= 0xe0 && c <= 0xef:
		if len(b) >= 3 && valid3(c, b[1], b[2]) {
			return 3
		}
	case c >= 0xf0 && c <= 0xf4:
		if len(b) >= 4 && b[2]&0xc0 == 0x80 && b[3]&0xc0 == 0x80 {
			b1 := b[1]
			switch {
			case b1&0xc0 != 0x80:
			case c == 0xf0 && b1 < 0x90:
			case c == 0xf4 && b1 >= 0x90:
			default:
				return 4
			}
		}
	}
	return 0
}

// valid3 reports whether b0 b1 b2 is a valid 3-byte UTF-8 sequence
// (U+0800 to U+FFFF without the surrogates), the common case for CJK text.
func valid3(b0, b1, b2 byte) bool {
	if b1&0xc0 != 0x80 || b2&0xc0 != 0x80 {
		return false
	}
	switch b0 {
	case 0xe0:
		return b1 >= 0xa0
	case 0xed:
		return b1 < 0xa0
	}
	return true
}

// escape decodes the escape sequence at in[i] (a backslash) and returns the
// rune and the number of input bytes it used.
func (e *encoder) escape(i int) (rune, int, error) {
	in := e.in
	if i+1 >= len(in) {
		return 0, 0, e.fail(i, ErrSyntax, "unterminated escape")
	}
	switch in[i+1] {
	case '"':
		return '"', 2, nil
	case '\\':
		return '\\', 2, nil
	case '/':
		return '/', 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
	default:
		return 0, 0, e.fail(i, ErrSyntax, fmt.Sprintf("invalid escape %q", in[i:i+2]))
	}
	r, ok := hex4(in, i+2)
	if !ok {
		return 0, 0, e.fail(i, ErrSyntax, "invalid \\u escape")
	}
	switch {
	case r >= 0xdc00 && r <= 0xdfff:
		return 0, 0, e.fail(i, ErrSurrogate, "low surrogate without a high surrogate")
	case r >= 0xd800 && r <= 0xdbff:
		if i+12 > len(in) || in[i+6] != '\\' || in[i+7] != 'u' {
			return 0, 0, e.fail(i, ErrSurrogate, "high surrogate not followed by a low surrogate")
		}
		lo, ok := hex4(in, i+8)
		if !ok {
			return 0, 0, e.fail(i+6, ErrSyntax, "invalid \\u escape")
		}
		if lo < 0xdc00 || lo > 0xdfff {
			return 0, 0, e.fail(i, ErrSurrogate, "high surrogate not followed by a low surrogate")
		}
		return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), 12, nil
	}
	return r, 6, nil
}

// hex4 decodes four hex digits at in[i:i+4].
func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

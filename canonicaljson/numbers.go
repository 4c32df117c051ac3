package canonicaljson

import "fmt"

// maxExpandedDigits bounds how many digits a number with an exponent may
// expand to when lenient mode writes it out as a plain integer.
const maxExpandedDigits = 1024

// number encodes the JSON number at e.pos.
func (e *encoder) number() error {
	in := e.in
	start := e.pos
	i := start
	neg := false
	if in[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && in[i] >= '1' && in[i] <= '9':
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
	default:
		return e.fail(start, ErrSyntax, "invalid number")
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(in) && in[i] == '.' {
		i++
		fracStart = i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			return e.fail(start, ErrSyntax, "invalid number: no digits after '.'")
		}
	}
	hasExp := false
	expNeg := false
	exp := 0
	expHuge := false
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		hasExp = true
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			expNeg = in[i] == '-'
			i++
		}
		ds := i
		for i < len(in) && in[i] >= '0' && in[i] <= '9' {
			if exp < 1<<24 {
				exp = exp*10 + int(in[i]-'0')
			} else {
				expHuge = true
			}
			i++
		}
		if i == ds {
			return e.fail(start, ErrSyntax, "invalid number: no digits in exponent")
		}
	}
	e.pos = i
	isPlainInt := fracStart == fracEnd && !hasExp

	if e.strict {
		if !isPlainInt {
			return e.fail(start, ErrFloat, fmt.Sprintf("%q", in[start:i]))
		}
		if !inSafeRange(in[intStart:intEnd]) {
			return e.fail(start, ErrNumberRange, fmt.Sprintf("%q", in[start:i]))
		}
	}
	if isPlainInt {
		if neg && !(intEnd-intStart == 1 && in[intStart] == '0') {
			e.out = append(e.out, '-')
		}
		e.out = append(e.out, in[intStart:intEnd]...)
		return nil
	}

	// Lenient mode, fraction or exponent: the value is M * 10^E where M is
	// the digits of the integer and fraction parts.
	if expNeg {
		exp = -exp
	}
	e10 := exp - (fracEnd - fracStart)
	// Significant digits: integer part then fraction part, without
	// leading zeros and with trailing zeros moved into the exponent.
	var digitBuf [64]byte
	digits := digitBuf[:0]
	digits = append(digits, in[intStart:intEnd]...)
	digits = append(digits, in[fracStart:fracEnd]...)
	lead := 0
	for lead < len(digits) && digits[lead] == '0' {
		lead++
	}
	digits = digits[lead:]
	if len(digits) == 0 {
		e.out = append(e.out, '0')
		return nil
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		e10++
	}
	if expHuge && !expNeg {
		return e.fail(start, ErrNumberRange, "exponent too large")
	}
	if expHuge || e10 < 0 {
		// Not an integer: copied as written.
		e.out = append(e.out, in[start:i]...)
		return nil
	}
	if len(digits)+e10 > maxExpandedDigits {
		return e.fail(start, ErrNumberRange, "integer too long to write out")
	}
	if neg {
		e.out = append(e.out, '-')
	}
	e.out = append(e.out, digits...)
	for ; e10 > 0; e10-- {
		e.out = append(e.out, '0')
	}
	return nil
}

// inSafeRange reports whether the decimal digits (no sign, no leading
// zeros) are at most 2^53-1.
func inSafeRange(d []byte) bool {
	const maxSafe = "9007199254740991"
	if len(d) != len(maxSafe) {
		return len(d) < len(maxSafe)
	}
	return string(d) <= maxSafe
}

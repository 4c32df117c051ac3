// Package b64 holds the unpadded base64 codecs Matrix uses, with the
// lenient decoding the spec asks of receivers.
package b64

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ErrBadBase64 is returned for input that is not base64 in either
// alphabet.
var ErrBadBase64 = errors.New("invalid base64")

// Std encodes b as unpadded standard base64.
func Std(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// URL encodes b as unpadded URL-safe base64.
func URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// AppendStd appends the unpadded standard base64 of b to dst.
func AppendStd(dst, b []byte) []byte { return base64.RawStdEncoding.AppendEncode(dst, b) }

// Decode decodes standard or URL-safe base64, padded or not. Padding bits
// that are not zero are tolerated (the spec's own test seed has them).
func Decode(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		if strings.ContainsAny(s, "+/") {
			return nil, ErrBadBase64
		}
		enc = base64.RawURLEncoding
	}
	out, err := enc.DecodeString(s)
	if err != nil {
		return nil, ErrBadBase64
	}
	return out, nil
}

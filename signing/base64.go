package signing

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/internal/b64"
)

// EncodeBase64 returns b as unpadded standard base64, the encoding Matrix
// uses for keys, signatures and hashes.
func EncodeBase64(b []byte) string { return b64.Std(b) }

// EncodeBase64URL returns b as unpadded URL-safe base64 (event IDs from
// room version 4, room IDs in version 12).
func EncodeBase64URL(b []byte) string { return b64.URL(b) }

// DecodeBase64 decodes base64 in the standard or URL-safe alphabet, padded
// or not, as the spec asks receivers to accept. Errors wrap [ErrBadBase64].
func DecodeBase64(s string) ([]byte, error) {
	b, err := b64.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrBadBase64, truncate(s))
	}
	return b, nil
}

func truncate(s string) string {
	if len(s) > 48 {
		return s[:48] + "..."
	}
	return s
}

package keys

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/id"
)

// checkServerName validates a server name (id.ParseServerName). Errors wrap
// ErrMalformed and id.ErrInvalidServerName (or id.ErrTooLong).
func checkServerName(s string) error {
	if _, err := id.ParseServerName(s); err != nil {
		return fmt.Errorf("%w: server name: %w", ErrMalformed, err)
	}
	return nil
}

// parseKeyID validates a key ID (id.ParseKeyID) and returns its algorithm.
func parseKeyID(s string) (string, error) {
	k, err := id.ParseKeyID(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return k.Algorithm(), nil
}

package roomversion_test

import (
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
)

func Example() {
	rules, err := roomversion.Get(roomversion.Default)
	if err != nil {
		panic(err)
	}
	fmt.Println(rules.ID, rules.StateResolution, rules.EventIDFormat, rules.PrivilegedCreators)

	_, err = roomversion.Get("org.example.custom")
	fmt.Println(errors.Is(err, roomversion.ErrUnknown))
	// Output:
	// 12 v2.1 url-safe-base64 true
	// true
}

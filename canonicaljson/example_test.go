package canonicaljson_test

import (
	"errors"
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
)

func Example() {
	out, err := canonicaljson.Canonicalize([]byte(`{ "b": "\u65E5", "a": [1, -0, 1e3] }`))
	fmt.Println(string(out), err)

	_, err = canonicaljson.CanonicalizeStrict([]byte(`{"a": 1.5}`))
	fmt.Println(errors.Is(err, canonicaljson.ErrFloat), err)

	signed, _ := canonicaljson.Append(nil, []byte(`{"signatures":{},"content":{}}`), canonicaljson.Options{Omit: []string{"signatures"}})
	fmt.Println(string(signed))
	// Output:
	// {"a":[1,0,1000],"b":"日"} <nil>
	// true canonicaljson: number is not an integer at byte offset 6: "1.5"
	// {"content":{}}
}

package id_test

import (
	"fmt"

	"github.com/gomatrixlib/gomatrixlib/id"
)

func Example() {
	u, err := id.ParseUserID("@Alice:matrix.org:8448")
	if err != nil {
		panic(err)
	}
	port, _ := u.Server().Port()
	fmt.Println(u.Localpart(), u.Server().Host(), port, u.Historical())

	_, err = id.ParseServerName("matrix.org:99999")
	fmt.Println(err)
	// Output:
	// Alice matrix.org 8448 true
	// id: invalid server name "matrix.org:99999": port out of range 1-65535
}

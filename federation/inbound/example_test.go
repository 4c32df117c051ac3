package inbound_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomatrixlib/gomatrixlib/federation/inbound"
)

func Example() {
	body := `{"origin":"remote.example","origin_server_ts":1700000000000,"pdus":[],"edus":[{"edu_type":"m.typing","content":{"room_id":"!r:remote.example","user_id":"@a:remote.example","typing":true}}]}`
	txn, err := inbound.ParseTransaction([]byte(body))
	if err != nil {
		panic(err)
	}
	fmt.Println(txn.Origin, len(txn.PDUs), txn.EDUs[0].Type)

	big := `{"origin":"x","origin_server_ts":1,"pdus":[` + strings.Repeat(`{},`, 60) + `{}]}`
	_, err = inbound.ParseTransaction([]byte(big))
	fmt.Println(errors.Is(err, inbound.ErrTooManyPDUs))

	acl := []byte(`{"allow":["*"],"deny":["*.evil.example"],"allow_ip_literals":false}`)
	fmt.Println(inbound.ServerAllowed(acl, "good.example:8448"), inbound.ServerAllowed(acl, "a.evil.example"), inbound.ServerAllowed(acl, "10.0.0.1"))
	// Output:
	// remote.example 0 m.typing
	// true
	// true false false
}

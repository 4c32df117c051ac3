package inbound

import (
	"errors"
	"testing"
)

func FuzzParseTransaction(f *testing.F) {
	f.Add([]byte(`{"origin":"a","origin_server_ts":5,"pdus":[{}],"edus":[{"edu_type":"m.typing","content":{}}]}`))
	f.Add([]byte(`{"origin":"a","origin_server_ts":5,"pdus":[],"pdus":[]}`))
	f.Add([]byte(`{"origin":"a","origin_server_ts":-1,"pdus":[1,2,3],"edus":[[],{"edu_type":1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		txn, err := ParseTransaction(body)
		if err != nil {
			if !errors.Is(err, ErrBadTransaction) && !errors.Is(err, ErrTooManyPDUs) && !errors.Is(err, ErrTooManyEDUs) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(txn.PDUs) > MaxPDUs || len(txn.EDUs)+txn.BadEDUs > MaxEDUs {
			t.Fatalf("limits exceeded: %d PDUs, %d EDUs", len(txn.PDUs), len(txn.EDUs))
		}
		for _, e := range txn.EDUs {
			if len(e.Content) == 0 {
				t.Fatal("EDU without content accepted")
			}
			if err := CheckEDUOrigin(e, txn.Origin); err != nil && !errors.Is(err, ErrEDUOrigin) {
				t.Fatalf("untyped error %v", err)
			}
		}
		_, _ = RoomIDOf(body)
	})
}

func FuzzServerAllowed(f *testing.F) {
	f.Add([]byte(`{"allow":["*.example"],"deny":["b?d.example"],"allow_ip_literals":false}`), "bad.example:8448")
	f.Add([]byte(`{"allow":["*"]}`), "[::1]")
	f.Fuzz(func(t *testing.T, content []byte, server string) {
		a := ServerAllowed(content, server)
		// A deny-all list always wins.
		if a && ServerAllowed([]byte(`{"allow":["*"],"deny":["*"]}`), server) {
			t.Fatal("deny * allowed a server")
		}
	})
}

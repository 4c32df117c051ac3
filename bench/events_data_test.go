package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

const benchServer = "example.org"

var (
	eventsOnce sync.Once
	benchKey   *signing.Key
	events1000 [][]byte // signed v10 message events of about 1 KB
	event60KB  []byte   // signed v10 state event of about 60 KB
)

func benchEvents(tb testing.TB) {
	eventsOnce.Do(func() {
		k, err := signing.ParseKey("ed25519 a_1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
		if err != nil {
			panic(err)
		}
		benchKey = k
		rules, _ := roomversion.Get("10")
		for i := 0; i < 1000; i++ {
			ev := fmt.Sprintf(`{"type":"m.room.message","room_id":"!jEsUZKDJdhlrceRyVU:example.org","sender":"@alice:example.org","origin_server_ts":%d,"depth":%d,"prev_events":["$Ww0VDBBWQfDLmoPzmgPrmTVdaA0GfhoqzUsVW6vtkRI"],"auth_events":["$ijpGy5n3_QHFuqvE45tC1Qe4CKrQlxd0rvMqJYj1WvY","$7ehyfJSJHdvX8WkEUf0XIPhHwCmCakVnPE0Csg_rXVo","$NzSSX6uhLbaWGS6rM-v4tYzN5ybIeVvCGvYdaf8K1M0"],"content":{"msgtype":"m.text","body":"%s"},"unsigned":{"age":12}}`,
				1700000000000+i, i+10, strings.Repeat("Hello everyone, message text. ", 22))
			s, err := signing.SignEvent(rules, benchServer, k.KeyID(), k.PrivateKey(), []byte(ev))
			if err != nil {
				panic(err)
			}
			events1000 = append(events1000, s)
		}
		big := strings.TrimSuffix(strings.Replace(string(bigStateEvent()), `"room_id":"!room:example.org"`, `"room_id":"!room:example.org","prev_events":[],"auth_events":[]`, 1), "}")
		big = strings.Replace(big, `,"unsigned":{"age":1}`, "", 1) + "}"
		s, err := signing.SignEvent(rules, benchServer, k.KeyID(), k.PrivateKey(), []byte(big))
		if err != nil {
			panic(err)
		}
		event60KB = s
	})
}

// fixedKey answers every lookup with the bench key.
type fixedKey struct{ pub ed25519.PublicKey }

func (f fixedKey) VerifyKey(context.Context, string, string, time.Time) (ed25519.PublicKey, error) {
	return f.pub, nil
}

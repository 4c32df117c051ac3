package bench

import (
	"fmt"
	"strings"
)

// messageEvent is a ~1 KB m.room.message event with keys in scrambled order.
func messageEvent() []byte {
	return []byte(`{"unsigned":{"age":4612,"transaction_id":"m1700000000000.7"},"type":"m.room.message","signatures":{"example.org":{"ed25519:a_AbCd":"K8280/U9SJ+5rpb3uhsj2JM8VJTjMfWSm7S7hqTOYoYwKNMjzvZDzh8kWSW0p5X0Pc3Fv0LmSDV1DgyUSTkdBA"}},"room_id":"!jEsUZKDJdhlrceRyVU:example.org","sender":"@alice:example.org","origin_server_ts":1700000000000,"depth":12,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"prev_events":["$Ww0VDBBWQfDLmoPzmgPrmTVdaA0GfhoqzUsVW6vtkRI"],"auth_events":["$ijpGy5n3_QHFuqvE45tC1Qe4CKrQlxd0rvMqJYj1WvY","$7ehyfJSJHdvX8WkEUf0XIPhHwCmCakVnPE0Csg_rXVo","$NzSSX6uhLbaWGS6rM-v4tYzN5ybIeVvCGvYdaf8K1M0"],"content":{"msgtype":"m.text","format":"org.matrix.custom.html","body":"Hello everyone! This is a longer message body to bring the event to about one kilobyte, with some punctuation: quotes \"like this\", a backslash \\ and a tab\t. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.","formatted_body":"<p>Hello everyone! This is a <strong>longer</strong> message body.</p>","m.mentions":{"user_ids":["@bob:example.org"]}}}`)
}

// bigStateEvent is a ~60 KB state event with many keys and non-ASCII text,
// keys in scrambled order.
func bigStateEvent() []byte {
	var b strings.Builder
	b.WriteString(`{"type":"m.room.power_levels","state_key":"","sender":"@admin:example.org","room_id":"!room:example.org","origin_server_ts":1700000000000,"depth":5,"content":{"users":{`)
	for i := 0; i < 1200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"@usér_%05d_%s:exämple.org":%d`, (i*7919)%100000, []string{"日本語", "ü", "ñandú", "😀"}[i%4], i%100)
	}
	b.WriteString(`},"events":{"m.room.name":50,"m.room.avatar":50},"users_default":0,"notes":"`)
	for b.Len() < 60000 {
		b.WriteString("Grüße aus Köln — 東京 ")
	}
	b.WriteString(`"},"unsigned":{"age":1}}`)
	return []byte(b.String())
}

var canonicalInputs = []struct {
	name string
	in   []byte
}{{"1KB", messageEvent()}, {"60KB", bigStateEvent()}}

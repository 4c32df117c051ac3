package federationapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestReadEDU(t *testing.T) {
	manyReceipts := func(n int) string {
		var users []string
		for i := range n {
			users = append(users, fmt.Sprintf(`"@u%d:b":{"event_ids":["$e%d"],"data":{"ts":%d}}`, i, i, i))
		}
		return `{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{` + strings.Join(users, ",") + `}}}}`
	}
	cases := []struct {
		name         string
		edu          string
		typing       bool // a typing notification comes out
		receipts     int
		dropped      int
		wantReceipt0 remoteReceipt
	}{
		{name: "typing", edu: `{"edu_type":"m.typing","content":{"room_id":"!r:a","user_id":"@u:b","typing":true}}`, typing: true},
		{name: "typing without user", edu: `{"edu_type":"m.typing","content":{"room_id":"!r:a","typing":true}}`, dropped: 1},
		{name: "typing not a bool", edu: `{"edu_type":"m.typing","content":{"room_id":"!r:a","user_id":"@u:b","typing":"yes"}}`, dropped: 1},
		{name: "content not an object", edu: `{"edu_type":"m.typing","content":[1]}`, dropped: 1},
		{name: "no content", edu: `{"edu_type":"m.typing"}`, dropped: 1},
		{name: "unknown type", edu: `{"edu_type":"m.presence","content":{}}`, dropped: 1},
		{
			name:     "receipt",
			edu:      `{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":["$e"],"data":{"ts":5,"thread_id":"main"}}}}}}`,
			receipts: 1, wantReceipt0: remoteReceipt{roomID: "!r:a", userID: "@u:b", threadID: "main", eventID: "$e", ts: 5, hasTS: true},
		},
		{
			name:     "receipt without ts",
			edu:      `{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":["$e"]}}}}}`,
			receipts: 1, wantReceipt0: remoteReceipt{roomID: "!r:a", userID: "@u:b", eventID: "$e"},
		},
		{name: "receipt event_ids a string", edu: `{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":"$e"}}}}}`, dropped: 1},
		{name: "receipt ts a string", edu: `{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":["$e"],"data":{"ts":"5"}}}}}}`, dropped: 1},
		{name: "private receipt", edu: `{"edu_type":"m.receipt","content":{"!r:a":{"m.read.private":{"@u:b":{"event_ids":["$e"]}}}}}`, dropped: 1},
		{name: "room not an object", edu: `{"edu_type":"m.receipt","content":{"!r:a":7}}`, dropped: 1},
		{name: "one good one bad", edu: `{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":[]},"@v:b":{"event_ids":["$e"]}}}}}`, receipts: 1, dropped: 1,
			wantReceipt0: remoteReceipt{roomID: "!r:a", userID: "@v:b", eventID: "$e"}},
		{name: "at the limit", edu: manyReceipts(maxReceiptsPerEDU), receipts: maxReceiptsPerEDU},
		{name: "over the limit", edu: manyReceipts(maxReceiptsPerEDU + 5), receipts: maxReceiptsPerEDU, dropped: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := readEDU(gjson.Parse(c.edu))
			if (got.typing != nil) != c.typing || len(got.receipts) != c.receipts || len(got.dropped) != c.dropped {
				t.Fatalf("typing %v, %d receipts, dropped %q; want typing %v, %d receipts, %d dropped",
					got.typing != nil, len(got.receipts), got.dropped, c.typing, c.receipts, c.dropped)
			}
			if c.receipts > 0 && c.wantReceipt0.userID != "" && got.receipts[0] != c.wantReceipt0 {
				t.Fatalf("receipt %+v, want %+v", got.receipts[0], c.wantReceipt0)
			}
		})
	}
}

// FuzzReadEDU: any input gives a bounded result without panicking, and
// what comes out was in the input, under the paths the spec names.
func FuzzReadEDU(f *testing.F) {
	f.Add(`{"edu_type":"m.typing","content":{"room_id":"!r:a","user_id":"@u:b","typing":true}}`)
	f.Add(`{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":["$e"],"data":{"ts":5}}}}}}`)
	f.Add(`{"edu_type":"m.receipt","content":{"!r:a":{"m.read":{"@u:b":{"event_ids":"$e"}}}}}`)
	f.Add(`{"edu_type":"m.typing","content":[`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, in string) {
		e := gjson.Parse(in)
		got := readEDU(e)
		if len(got.receipts) > maxReceiptsPerEDU {
			t.Fatalf("%d receipts, more than %d", len(got.receipts), maxReceiptsPerEDU)
		}
		if got.typing != nil {
			if e.Get("edu_type").Str != "m.typing" || len(got.receipts) > 0 {
				t.Fatalf("typing out of %q", in)
			}
			c := e.Get("content")
			if c.Get("room_id").Str != got.typing.roomID || c.Get("user_id").Str != got.typing.userID {
				t.Fatalf("typing %+v is not the input's", got.typing)
			}
		}
		for _, r := range got.receipts {
			if e.Get("edu_type").Str != "m.receipt" {
				t.Fatalf("receipt out of %q", in)
			}
			if r.eventID == "" && !strings.Contains(in, `""`) {
				t.Fatalf("empty event ID out of %q", in)
			}
		}
		if got.typing == nil && len(got.receipts) == 0 && len(got.dropped) == 0 &&
			!(e.Get("edu_type").Str == "m.receipt" && e.Get("content").IsObject()) {
			t.Fatalf("nothing out of %q and no reason given", in)
		}
	})
}

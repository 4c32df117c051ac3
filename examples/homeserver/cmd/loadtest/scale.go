package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/roomserver"
)

// scaleResult is what one room size measured.
type scaleResult struct {
	members                 int
	firstJoins, lastJoins   []time.Duration // per join, members 2-101 and the last 100
	sends                   []time.Duration // sorted
	bytesPerMsg, jsonPerMsg float64
	stateLoads              []time.Duration // sorted
	stateSize               int
}

// runScale builds a room of each size on a fresh SQLite data folder: the
// members register (bcrypt cost 4) and join one by one over HTTP, then the
// owner sends messages one at a time. It reports the join time of the
// first and last 100 joiners, send latency, database growth per message
// and the time to load the state after random events of the room. The
// sends go in rounds that visit every room in turn, so that the rooms'
// send figures are taken over the same minutes of a shared machine.
func runScale(sizes []int, nMessages, workers int) error {
	var rooms []*scaleRoom
	defer func() {
		for _, r := range rooms {
			r.close()
		}
	}()
	for _, n := range sizes {
		r, err := buildRoom(n, workers)
		if err != nil {
			return fmt.Errorf("%d members: %w", n, err)
		}
		rooms = append(rooms, r)
	}
	const rounds = 4
	for round := 0; round < rounds; round++ {
		for _, r := range rooms {
			if err := r.sendRound(round*nMessages/rounds, (round+1)*nMessages/rounds); err != nil {
				return fmt.Errorf("%d members: %w", r.res.members, err)
			}
		}
	}
	var results []scaleResult
	for _, r := range rooms {
		if err := r.finish(nMessages); err != nil {
			return fmt.Errorf("%d members: %w", r.res.members, err)
		}
		results = append(results, r.res)
		printScale(r.res)
	}
	if len(results) > 1 {
		base := results[0]
		fmt.Println()
		for _, r := range results[1:] {
			fmt.Printf("%d vs %d members: send p50 %.2fx; last-100 joins %.2fx the first 100 (per join, median)\n",
				r.members, base.members, float64(pct(r.sends, 0.5))/float64(pct(base.sends, 0.5)),
				float64(median(r.lastJoins))/float64(median(r.firstJoins)))
		}
	}
	return nil
}

func printScale(r scaleResult) {
	fmt.Printf("room of %d members:\n", r.members)
	if len(r.firstJoins) > 0 {
		fmt.Printf("  join, members 2-%d: median %v, mean %v per join\n", len(r.firstJoins)+1, median(r.firstJoins).Round(time.Microsecond), mean(r.firstJoins).Round(time.Microsecond))
		fmt.Printf("  join, last %d members: median %v, mean %v per join\n", len(r.lastJoins), median(r.lastJoins).Round(time.Microsecond), mean(r.lastJoins).Round(time.Microsecond))
	}
	fmt.Printf("  send (%d messages, one at a time): p50 %v, p99 %v\n", len(r.sends), pct(r.sends, 0.5).Round(time.Microsecond), pct(r.sends, 0.99).Round(time.Microsecond))
	fmt.Printf("  database growth per message: %.0f bytes (event JSON %.0f bytes)\n", r.bytesPerMsg, r.jsonPerMsg)
	fmt.Printf("  state after a random event (%d entries at the end): load p50 %v, max %v over %d events\n", r.stateSize, pct(r.stateLoads, 0.5).Round(time.Microsecond), r.stateLoads[len(r.stateLoads)-1].Round(time.Microsecond), len(r.stateLoads))
}

// scaleRoom is one room of the scale run, alive until close.
type scaleRoom struct {
	res    scaleResult
	dir    string
	s      *server.Server
	d      *db.DB // a second handle, for sizes and state loads
	owner  *testclient.Client
	roomID string
	before int64 // used bytes before the first timed send
	last   string
}

func (r *scaleRoom) close() {
	if r.d != nil {
		r.d.Close()
	}
	if r.s != nil {
		r.s.Close()
	}
	os.RemoveAll(r.dir)
}

// buildRoom starts a server and fills its room with members.
func buildRoom(members, workers int) (_ *scaleRoom, err error) {
	r := &scaleRoom{res: scaleResult{members: members}}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	res := &r.res
	if r.dir, err = os.MkdirTemp("", "loadtest-scale"); err != nil {
		return nil, err
	}
	dir := r.dir
	s, err := server.Start(server.Config{DataDir: dir, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: "scale.test", BcryptCost: 4, NoRateLimits: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	r.s = s
	base := "http://" + s.ClientAddr()
	owner := &testclient.Client{Base: base}
	if err := owner.Register("owner", "pw"); err != nil {
		return nil, err
	}
	created, err := owner.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"})
	if err != nil {
		return nil, err
	}
	roomID := created["room_id"].(string)
	joinPath := "/rooms/" + url.PathEscape(roomID) + "/join"

	// Register everyone first, in parallel.
	cs := make([]*testclient.Client, members-1)
	if err := parallel(len(cs), workers, func(i int) error {
		cs[i] = &testclient.Client{Base: base}
		return cs[i].Register(fmt.Sprintf("m%d", i), "pw")
	}); err != nil {
		return nil, err
	}
	// Joins: the first and last 100 one at a time (timed), the middle in
	// parallel.
	edge := min(100, len(cs)/2)
	timedJoin := func(c *testclient.Client) (time.Duration, error) {
		t0 := time.Now()
		_, err := c.MustOK("POST", joinPath, nil)
		return time.Since(t0), err
	}
	for _, c := range cs[:edge] {
		d, err := timedJoin(c)
		if err != nil {
			return nil, err
		}
		res.firstJoins = append(res.firstJoins, d)
	}
	middle := cs[edge : len(cs)-edge]
	if err := parallel(len(middle), workers, func(i int) error {
		_, err := middle[i].MustOK("POST", joinPath, nil)
		return err
	}); err != nil {
		return nil, err
	}
	for _, c := range cs[len(cs)-edge:] {
		d, err := timedJoin(c)
		if err != nil {
			return nil, err
		}
		res.lastJoins = append(res.lastJoins, d)
	}

	if r.d, err = db.Open(dir, ""); err != nil {
		return nil, err
	}
	r.owner, r.roomID = owner, roomID
	warm, err := owner.Send(roomID, "warm", "warm-up")
	if err != nil {
		return nil, err
	}
	if err := r.waitSynced(warm); err != nil {
		return nil, err
	}
	if r.before, err = usedBytes(r.d); err != nil {
		return nil, err
	}
	return r, nil
}

// waitSynced waits until the sync reader has applied the event.
func (r *scaleRoom) waitSynced(eventID string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var n int
		if err := r.d.QueryRow(`SELECT COUNT(*) FROM sync_events WHERE event_id = ?`, eventID).Scan(&n); err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("sync reader did not apply %s", eventID)
}

// sendRound sends messages from to to-1, one at a time, timing each.
func (r *scaleRoom) sendRound(from, to int) error {
	for i := from; i < to; i++ {
		t0 := time.Now()
		id, err := r.owner.Send(r.roomID, fmt.Sprintf("t%d", i), fmt.Sprintf("message %d of the scale test", i))
		if err != nil {
			return err
		}
		r.res.sends = append(r.res.sends, time.Since(t0))
		r.last = id
	}
	return nil
}

// finish measures the database growth over the sends and the state loads.
func (r *scaleRoom) finish(nMessages int) error {
	res, d, roomID, members, last := &r.res, r.d, r.roomID, r.res.members, r.last
	if err := r.waitSynced(last); err != nil {
		return err
	}
	after, err := usedBytes(d)
	if err != nil {
		return err
	}
	res.bytesPerMsg = float64(after-r.before) / float64(nMessages)
	var jsonBytes int64
	if err := d.QueryRow(`SELECT SUM(LENGTH(json)) FROM rs_events WHERE room_id = ? AND event_id IN (SELECT event_id FROM rs_events WHERE room_id = ? ORDER BY nid DESC LIMIT ?)`,
		roomID, roomID, nMessages).Scan(&jsonBytes); err != nil {
		return err
	}
	res.jsonPerMsg = float64(jsonBytes) / float64(nMessages)
	slices.Sort(res.sends)

	// The state after random events of the room, through the room server's
	// query API on the second handle (cold: no event cache is involved).
	rs, err := roomserver.New(d, nil, "scale.test", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	ids, err := db.Strings(d.Query(`SELECT event_id FROM rs_events WHERE room_id = ?`, roomID))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(members), 7))
	for i := 0; i < 30; i++ {
		id := ids[rng.IntN(len(ids))]
		if i == 0 {
			id = last
		}
		t0 := time.Now()
		st, err := rs.StateAfter(id)
		if err != nil {
			return err
		}
		res.stateLoads = append(res.stateLoads, time.Since(t0))
		if i == 0 {
			res.stateSize = len(st)
		}
	}
	slices.Sort(res.stateLoads)
	return nil
}

// usedBytes is the size of the SQLite database without free pages (the
// WAL's pages included: the connection reads through it).
func usedBytes(d *db.DB) (int64, error) {
	var pages, free, size int64
	if err := d.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		return 0, err
	}
	if err := d.QueryRow(`PRAGMA freelist_count`).Scan(&free); err != nil {
		return 0, err
	}
	if err := d.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		return 0, err
	}
	return (pages - free) * size, nil
}

// parallel runs f(0..n-1) on workers goroutines and returns the first
// error.
func parallel(n, workers int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return pct(s, 0.5)
}

func mean(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t / time.Duration(len(ds))
}

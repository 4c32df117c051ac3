// Command loadtest measures the homeserver under concurrent sends: N
// clients each send M messages into one room on 127.0.0.1, then one member
// syncs and checks that every acknowledged message arrived exactly once.
// It prints messages per second and send latency percentiles.
//
// With -scale (a list of room sizes, e.g. -scale 10,1000,10000) it
// measures instead how the room server scales with the room's size: the
// join time of the first and last 100 members, send latency of -messages
// messages sent one at a time, database growth per message and the time to
// load the state after a random event.
//
// It starts a homeserver in-process on a temporary data folder.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

func main() {
	clients := flag.Int("clients", 50, "concurrent clients")
	ephemeral := flag.Duration("ephemeral", 500*time.Millisecond, "each client also sends a typing notification or a read receipt this often while sending (0: off)")
	syncer := flag.Bool("syncer", true, "one member long-polls /sync while the others send")
	messages := flag.Int("messages", 100, "messages per client (with -scale: messages sent)")
	scale := flag.String("scale", "", "comma-separated room sizes to measure scaling with (e.g. 10,1000,10000)")
	workers := flag.Int("workers", 8, "with -scale: parallel registrations and middle joins")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *scale != "" {
		var sizes []int
		for _, f := range strings.Split(*scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 2 {
				fmt.Fprintln(os.Stderr, "loadtest: -scale wants room sizes of at least 2")
				os.Exit(2)
			}
			sizes = append(sizes, n)
		}
		if err := runScale(sizes, *messages, *workers); err != nil {
			pprof.StopCPUProfile()
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*clients, *messages, *ephemeral, *syncer); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(nClients, nMessages int, ephemeralEvery time.Duration, syncer bool) error {
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := server.Start(server.Config{DataDir: dir, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: "load.test", BcryptCost: 4, NoRateLimits: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer s.Close()
	base := "http://" + s.ClientAddr()
	owner := &testclient.Client{Base: base}
	if err := owner.Register("owner", "pw"); err != nil {
		return err
	}
	created, err := owner.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"})
	if err != nil {
		return err
	}
	roomID := created["room_id"].(string)
	cs := make([]*testclient.Client, nClients)
	for i := range cs {
		cs[i] = &testclient.Client{Base: base}
		if err := cs[i].Register(fmt.Sprintf("load%d", i), "pw"); err != nil {
			return err
		}
		if _, err := cs[i].MustOK("POST", "/rooms/"+url.PathEscape(roomID)+"/join", nil); err != nil {
			return err
		}
	}
	_, since, err := owner.CollectMessages(roomID, "", 0, time.Second)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var latencies []time.Duration
	accepted := map[string]bool{}
	var firstErr error
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var ephWG sync.WaitGroup
	var ephOps, ephErrs, syncs int64
	if ephemeralEvery > 0 {
		for i, c := range cs {
			ephWG.Add(1)
			go func() {
				defer ephWG.Done()
				tick := time.NewTicker(ephemeralEvery)
				defer tick.Stop()
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					var err error
					if n%2 == 0 {
						_, err = c.MustOK("PUT", "/rooms/"+url.PathEscape(roomID)+"/typing/"+url.PathEscape(c.UserID), map[string]any{"typing": true, "timeout": 5000})
					} else {
						mu.Lock()
						var last string
						for id := range accepted {
							last = id
							break
						}
						mu.Unlock()
						if last == "" {
							continue
						}
						_, err = c.MustOK("POST", "/rooms/"+url.PathEscape(roomID)+"/receipt/m.read/"+url.PathEscape(last), map[string]any{})
					}
					mu.Lock()
					ephOps++
					if err != nil {
						ephErrs++
						if ephErrs == 1 {
							fmt.Fprintf(os.Stderr, "client %d: ephemeral request failed: %v\n", i, err)
						}
					}
					mu.Unlock()
				}
			}()
		}
	}
	if syncer {
		// A member long-polls /sync throughout, as a client would.
		ephWG.Add(1)
		go func() {
			defer ephWG.Done()
			tok := since
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := owner.Sync(tok, 2*time.Second, 50)
				if err != nil {
					return
				}
				tok, _ = res["next_batch"].(string)
				mu.Lock()
				syncs++
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < nMessages; j++ {
				t0 := time.Now()
				id, err := c.Send(roomID, fmt.Sprintf("m%d", j), fmt.Sprintf("client %d message %d", i, j))
				d := time.Since(t0)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					latencies = append(latencies, d)
					accepted[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	ephWG.Wait()
	if ephErrs > 0 {
		return fmt.Errorf("%d of %d typing/receipt requests failed", ephErrs, ephOps)
	}
	if firstErr != nil {
		return firstErr
	}
	// Wait for the sync reader to catch up, then read everything back.
	deadline := time.Now().Add(time.Minute)
	var ids []string
	for time.Now().Before(deadline) {
		if ids, err = owner.AllMessagesSince(roomID, since); err != nil {
			return err
		}
		if len(ids) >= len(accepted) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			return fmt.Errorf("event %s delivered twice", id)
		}
		seen[id] = true
	}
	lost := 0
	for id := range accepted {
		if !seen[id] {
			lost++
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	fmt.Printf("clients=%d messages/client=%d sent=%d in %v: %.0f messages/s\n", nClients, nMessages, len(accepted), elapsed.Round(time.Millisecond), float64(len(accepted))/elapsed.Seconds())
	if ephemeralEvery > 0 || syncer {
		fmt.Printf("meanwhile: %d typing notifications and read receipts (%.0f/s), %d long-poll /sync responses to one member\n", ephOps, float64(ephOps)/elapsed.Seconds(), syncs)
	}
	fmt.Printf("send latency: p50 %v  p90 %v  p99 %v  max %v\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond))
	fmt.Printf("read back by a member (/messages from the /sync token): %d of %d (lost %d, duplicated 0)\n", len(seen), len(accepted), lost)
	if lost > 0 {
		return fmt.Errorf("%d messages lost", lost)
	}
	return nil
}

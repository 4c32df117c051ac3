package server_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
	"github.com/gomatrixlib/gomatrixlib/federation"
)

// peer is one homeserver of a federation test, restartable on the same
// data folder and federation port (so its server name stays the same).
type peer struct {
	t       *testing.T
	dir     string
	fedAddr string
	name    string
	s       *server.Server
	cut     atomic.Bool // outbound federation refused (a partition)
}

func newPeer(t *testing.T) *peer {
	addr := freeAddr(t)
	p := &peer{t: t, dir: t.TempDir(), fedAddr: addr, name: addr}
	p.start()
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("GOMATRIXLIB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (p *peer) start() {
	p.t.Helper()
	var err error
	p.s, err = server.Start(server.Config{DataDir: p.dir, ClientAddr: "127.0.0.1:0", FederationAddr: p.fedAddr,
		ServerName: p.name, BcryptCost: 4, Logger: testLogger(p.t),
		// The peers' tests send a hundred messages a side back to back;
		// on a quiet machine that passes the default send limit (10/s,
		// burst 50). The limits have their own tests.
		NoRateLimits:             true,
		AllowPrivateDestinations: true, InsecureSkipTLSVerify: true,
		SenderBackoff: &federation.Backoff{Min: 100 * time.Millisecond, Max: time.Second},
		OutboundFilter: func(string) error {
			if p.cut.Load() {
				return errors.New("test partition")
			}
			return nil
		}})
	if err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) stop() {
	if p.s != nil {
		p.s.Close()
		p.s = nil
	}
}

// user registers a user on the peer.
func (p *peer) user(name string) *testclient.Client {
	p.t.Helper()
	c := &testclient.Client{Base: "http://" + p.s.ClientAddr()}
	if err := c.Register(name, "secret-"+name); err != nil {
		p.t.Fatal(err)
	}
	return c
}

// rebase points a client at the peer's (new) client address.
func (p *peer) rebase(c *testclient.Client) { c.Base = "http://" + p.s.ClientAddr() }

// eventually polls f every 20 ms until it returns nil or the deadline
// passes, then fails with f's last error.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func membershipOf(c *testclient.Client, roomID, userID string) (string, error) {
	r, err := c.Do("GET", "/rooms/"+url.PathEscape(roomID)+"/state/m.room.member/"+url.PathEscape(userID), nil)
	if err != nil {
		return "", err
	}
	if r.Status != 200 {
		return "", fmt.Errorf("%d %s", r.Status, r.Raw)
	}
	m, _ := r.Body["membership"].(string)
	return m, nil
}

// timeline returns the IDs of a room's message events as the client's
// server orders them (/messages from the start).
func timeline(c *testclient.Client, roomID string) ([]string, error) {
	return c.AllMessagesSince(roomID, "")
}

// syncWaiter follows one client's /sync and records when each message
// event first appears.
type syncWaiter struct {
	c     *testclient.Client
	room  string
	since string
	seen  map[string]time.Time
}

func newSyncWaiter(t *testing.T, c *testclient.Client, roomID string) *syncWaiter {
	s, err := c.Sync("", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := s["next_batch"].(string)
	w := &syncWaiter{c: c, room: roomID, since: next, seen: map[string]time.Time{}}
	// An event that arrived before the waiter is in this first answer, and
	// in no later one.
	now := time.Now()
	for _, id := range testclient.TimelineIDs(s, roomID, "") {
		w.seen[id] = now
	}
	return w
}

// waitFor long-polls /sync until eventID arrives and returns the time it
// was first seen.
func (w *syncWaiter) waitFor(eventID string, d time.Duration) (time.Time, error) {
	end := time.Now().Add(d)
	for {
		if at, ok := w.seen[eventID]; ok {
			return at, nil
		}
		if time.Now().After(end) {
			return time.Time{}, fmt.Errorf("event %s not in /sync within %s", eventID, d)
		}
		s, err := w.c.Sync(w.since, time.Second, 1000)
		if err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		for _, id := range testclient.TimelineIDs(s, w.room, "") {
			if _, ok := w.seen[id]; !ok {
				w.seen[id] = now
			}
		}
		w.since, _ = s["next_batch"].(string)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// TestFederationTwoServers runs two homeservers with different server
// names on 127.0.0.1 and, in a room of version 10 and one of version 12:
// a user of the second joins the first's room over federation; 100
// messages go each way, one at a time, and both servers list the 200 in
// the same order (the time from each send to the other server's /sync is
// measured: median under 1 s required for each direction); the second server is stopped, the
// first sends 20 messages, the second comes back and receives all 20;
// both sides change the topic while partitioned and end with the same
// current state; a ban on the first server takes effect on the second.
func TestFederationTwoServers(t *testing.T) {
	const perSide = 100
	for _, version := range []string{"10", "12"} {
		t.Run("v"+version, func(t *testing.T) {
			a, b := newPeer(t), newPeer(t)
			defer a.stop()
			defer b.stop()
			alice, bob := a.user("alice"), b.user("bob")

			created, err := alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "room_version": version, "name": "federated"})
			if err != nil {
				t.Fatal(err)
			}
			roomID := created["room_id"].(string)
			room := "/rooms/" + url.PathEscape(roomID)

			// bob joins through a's server.
			if _, err := bob.MustOK("POST", "/join/"+url.PathEscape(roomID)+"?server_name="+url.QueryEscape(a.name), map[string]any{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "bob's join on a", func() error {
				m, err := membershipOf(alice, roomID, bob.UserID)
				if err == nil && m != "join" {
					err = fmt.Errorf("membership %q", m)
				}
				return err
			})
			if m, err := membershipOf(bob, roomID, alice.UserID); err != nil || m != "join" {
				t.Fatalf("b's state of alice: %q %v", m, err)
			}
			// Remote profile over federation.
			if _, err := alice.MustOK("PUT", "/profile/"+url.PathEscape(alice.UserID)+"/displayname", map[string]string{"displayname": "Alice A"}); err != nil {
				t.Fatal(err)
			}
			prof, err := bob.MustOK("GET", "/profile/"+url.PathEscape(alice.UserID), nil)
			if err != nil || prof["displayname"] != "Alice A" {
				t.Fatalf("remote profile: %v %v", prof, err)
			}

			// perSide messages each way, alternating, each awaited on the other
			// side; the time to the other's /sync is measured.
			wa, wb := newSyncWaiter(t, alice, roomID), newSyncWaiter(t, bob, roomID)
			var lat [2][]time.Duration
			for i := 0; i < 2*perSide; i++ {
				from, to, dir := alice, wb, 0
				if i%2 == 1 {
					from, to, dir = bob, wa, 1
				}
				sent := time.Now()
				id, err := from.Send(roomID, fmt.Sprintf("m%d", i), fmt.Sprintf("message %d", i))
				if err != nil {
					t.Fatal(err)
				}
				at, err := to.waitFor(id, 20*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				lat[dir] = append(lat[dir], at.Sub(sent))
			}
			for dir, name := range []string{"a->b", "b->a"} {
				m := median(lat[dir])
				t.Logf("room v%s: %s: median %s from send to the other server's /sync (max %s) over %d messages", version, name, m, slices.Max(lat[dir]), len(lat[dir]))
				if m > time.Second {
					t.Errorf("%s: median latency %s over 1 s", name, m)
				}
			}
			ta, err := timeline(alice, roomID)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := timeline(bob, roomID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ta) != 2*perSide || !slices.Equal(ta, tb) {
				t.Fatalf("timelines differ: a has %d, b has %d messages", len(ta), len(tb))
			}

			// b stopped; a sends 20; b back receives all 20.
			b.stop()
			var offline []string
			for i := 0; i < 20; i++ {
				id, err := alice.Send(roomID, fmt.Sprintf("off%d", i), fmt.Sprintf("while b is down %d", i))
				if err != nil {
					t.Fatal(err)
				}
				offline = append(offline, id)
			}
			b.start()
			b.rebase(bob)
			eventually(t, 20*time.Second, "b receives the 20 messages sent while it was down", func() error {
				tb, err := timeline(bob, roomID)
				if err != nil {
					return err
				}
				for _, id := range offline {
					if !slices.Contains(tb, id) {
						return fmt.Errorf("missing %s (b has %d messages)", id, len(tb))
					}
				}
				return nil
			})
			tb, _ = timeline(bob, roomID)
			if len(tb) != 2*perSide+20 {
				t.Fatalf("b has %d messages, want %d (none twice)", len(tb), 2*perSide+20)
			}

			// A fork: bob gets power to set the topic, then both servers
			// set it while partitioned; after reconnecting both resolve to
			// the same topic.
			pl, err := alice.MustOK("GET", room+"/state/m.room.power_levels", nil)
			if err != nil {
				t.Fatal(err)
			}
			users, _ := pl["users"].(map[string]any)
			if users == nil {
				users = map[string]any{}
			}
			users[bob.UserID] = 50
			pl["users"] = users
			_, err = alice.MustOK("PUT", room+"/state/m.room.power_levels", pl)
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "bob's power on b", func() error {
				got, err := bob.MustOK("GET", room+"/state/m.room.power_levels", nil)
				if err != nil {
					return err
				}
				u, _ := got["users"].(map[string]any)
				if u[bob.UserID] != float64(50) {
					return fmt.Errorf("power levels on b: %v", got["users"])
				}
				return nil
			})
			a.cut.Store(true)
			b.cut.Store(true)
			if _, err := alice.MustOK("PUT", room+"/state/m.room.topic", map[string]string{"topic": "from a"}); err != nil {
				t.Fatal(err)
			}
			if _, err := bob.MustOK("PUT", room+"/state/m.room.topic", map[string]string{"topic": "from b"}); err != nil {
				t.Fatal(err)
			}
			fa, _ := alice.Send(roomID, "fork-a", "fork on a")
			fb, _ := bob.Send(roomID, "fork-b", "fork on b")
			a.cut.Store(false)
			b.cut.Store(false)
			var topicA, topicB any
			eventually(t, 20*time.Second, "both servers resolve the fork to the same topic", func() error {
				ta, err := timeline(alice, roomID)
				if err != nil {
					return err
				}
				tb, err := timeline(bob, roomID)
				if err != nil {
					return err
				}
				if !slices.Contains(ta, fb) || !slices.Contains(tb, fa) {
					return errors.New("the other side's fork not received yet")
				}
				sa, err := alice.MustOK("GET", room+"/state/m.room.topic", nil)
				if err != nil {
					return err
				}
				sb, err := bob.MustOK("GET", room+"/state/m.room.topic", nil)
				if err != nil {
					return err
				}
				topicA, topicB = sa["topic"], sb["topic"]
				if topicA != topicB {
					return fmt.Errorf("a has topic %v, b has %v", topicA, topicB)
				}
				return nil
			})
			t.Logf("room v%s: fork resolved to topic %v on both servers", version, topicA)
			// Both can still talk after the merge.
			after, err := alice.Send(roomID, "after-fork", "after the fork")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "a message after the fork reaches b", func() error {
				tb, err := timeline(bob, roomID)
				if err != nil {
					return err
				}
				if !slices.Contains(tb, after) {
					return errors.New("not yet")
				}
				return nil
			})

			// A ban on a takes effect on b.
			if _, err := alice.MustOK("POST", room+"/ban", map[string]string{"user_id": bob.UserID, "reason": "test"}); err != nil {
				t.Fatal(err)
			}
			attempt := 0
			eventually(t, 10*time.Second, "the ban reaches b", func() error {
				attempt++
				r, err := bob.Do("PUT", room+fmt.Sprintf("/send/m.room.message/after-ban-%d", attempt), map[string]string{"msgtype": "m.text", "body": "banned?"})
				if err != nil {
					return err
				}
				if r.Status != 403 {
					return fmt.Errorf("bob's send on b: %d %s", r.Status, r.Raw)
				}
				return nil
			})
			if m, err := membershipOf(alice, roomID, bob.UserID); err != nil || m != "ban" {
				t.Fatalf("a's state of bob: %q %v", m, err)
			}
		})
	}
}

// federatedRoom starts two peers, creates a public room of version 10 as
// alice on a, and joins bob of b to it through a.
func federatedRoom(t *testing.T) (a, b *peer, alice, bob *testclient.Client, roomID string) {
	t.Helper()
	a, b = newPeer(t), newPeer(t)
	t.Cleanup(a.stop)
	t.Cleanup(b.stop)
	alice, bob = a.user("alice"), b.user("bob")
	created, err := alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "room_version": "10"})
	if err != nil {
		t.Fatal(err)
	}
	roomID = created["room_id"].(string)
	if _, err := bob.MustOK("POST", "/join/"+url.PathEscape(roomID)+"?server_name="+url.QueryEscape(a.name), map[string]any{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "bob's join on a", func() error { return joinedOn(alice, roomID, bob.UserID) })
	return a, b, alice, bob, roomID
}

// TestFederationSenderRestart checks the outbound queue is durable: the
// sending server is restarted while the destination is down, and once the
// destination is back it receives every event sent meanwhile, once.
func TestFederationSenderRestart(t *testing.T) {
	a, b, alice, bob, roomID := federatedRoom(t)
	defer a.stop()
	defer b.stop()

	b.stop()
	var sent []string
	for i := 0; i < 10; i++ {
		id, err := alice.Send(roomID, fmt.Sprintf("r%d", i), fmt.Sprintf("queued %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
	}
	a.stop()
	a.start()
	a.rebase(alice)
	b.start()
	b.rebase(bob)
	eventually(t, 45*time.Second, "b receives what a queued before its restart", func() error {
		tb, err := timeline(bob, roomID)
		if err != nil {
			return err
		}
		for _, id := range sent {
			if !slices.Contains(tb, id) {
				r, _ := bob.Do("GET", "/rooms/"+url.PathEscape(roomID)+"/messages?dir=b&limit=30", nil)
				return fmt.Errorf("missing %s; b has %v; /messages: %s", id, tb, r.Raw)
			}
		}
		if len(tb) != len(sent) {
			return fmt.Errorf("b has %d messages, want %d", len(tb), len(sent))
		}
		return nil
	})
}

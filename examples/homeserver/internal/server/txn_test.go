package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// messageBodies returns how many times each body occurs among the room's
// m.room.message events, read with /messages.
func messageBodies(t *testing.T, c *testclient.Client, roomID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	from := "s0"
	for {
		b := must[map[string]any](t)(c.MustOK("GET", path(roomID)+"/messages?dir=f&limit=500&from="+from, nil))
		chunk, _ := b["chunk"].([]any)
		for _, e := range chunk {
			m, _ := e.(map[string]any)
			if m["type"] == "m.room.message" {
				body, _ := m["content"].(map[string]any)["body"].(string)
				out[body]++
			}
		}
		end, more := b["end"].(string)
		if !more || len(chunk) == 0 {
			return out
		}
		from = end
	}
}

// Bug 4: a send whose event reached the input log but whose request ended
// before the verdict (the client gave up, or the server died) must not be
// duplicated by the client's retry with the same transaction ID: the
// transaction ID travels with the event and is recorded with it.
func TestTxnRecordedWithEvent(t *testing.T) {
	s := start(t, t.TempDir())
	defer s.Close()
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	const n = 40
	// Each first attempt gives up after a few milliseconds, often after
	// its event was appended to the log but before the answer.
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			impatient := *alice
			impatient.HTTP = &http.Client{Timeout: time.Duration(2+rand.IntN(30)) * time.Millisecond}
			_, _ = impatient.Send(roomID, fmt.Sprintf("t%d", i), fmt.Sprintf("body %d", i))
		}()
	}
	wg.Wait()
	ids := map[string]string{}
	for i := 0; i < n; i++ {
		id, err := alice.Send(roomID, fmt.Sprintf("t%d", i), fmt.Sprintf("body %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = fmt.Sprintf("body %d", i)
		// And again: still the same event.
		if again := must[string](t)(alice.Send(roomID, fmt.Sprintf("t%d", i), "other body")); again != id {
			t.Fatalf("second retry of t%d gave %s, want %s", i, again, id)
		}
	}
	if len(ids) != n {
		t.Fatalf("%d distinct event IDs for %d transactions", len(ids), n)
	}
	// Give the log time to deliver anything still in flight, then count.
	got := map[string]int{}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got = messageBodies(t, alice, roomID)
		if len(got) == n {
			break
		}
	}
	for i := 0; i < n; i++ {
		if c := got[fmt.Sprintf("body %d", i)]; c != 1 {
			t.Errorf("body %d stored %d times", i, c)
		}
	}
	if got["other body"] != 0 {
		t.Errorf("a retry with another body was stored")
	}
}

// startNATS runs a NATS server with JetStream on 127.0.0.1, the way an
// external log would run.
func startNATS(t *testing.T, dir string, port int) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	return ns
}

// Bug 8: with an external log that goes down, a send fails fast with 503
// and Retry-After, is never appended later, and the client's retry with
// the same transaction ID after the log is back stores the message once.
func TestLogOutage(t *testing.T) {
	natsDir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ns := startNATS(t, natsDir, port)
	defer func() { ns.Shutdown() }()
	s, err := server.Start(server.Config{DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: "test.local", BcryptCost: 4, NoRateLimits: true, NATSURL: "nats://127.0.0.1:" + strconv.Itoa(port),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := register(t, s, "alice")
	roomID := must[map[string]any](t)(alice.MustOK("POST", "/createRoom", nil))["room_id"].(string)
	must[string](t)(alice.Send(roomID, "d0", "d0"))

	ns.Shutdown()
	ns.WaitForShutdown()
	begin := time.Now()
	r := must[*testclient.Response](t)(alice.Do("PUT", path(roomID)+"/send/m.room.message/d1", map[string]string{"msgtype": "m.text", "body": "d1"}))
	if took := time.Since(begin); r.Status != 503 || took > 6*time.Second {
		t.Fatalf("send during the outage: %d %s after %v, want a fast 503", r.Status, r.Raw, took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", alice.Base+"/_matrix/client/v3"+path(roomID)+"/send/m.room.message/d1", strings.NewReader(`{"msgtype":"m.text","body":"d1"}`))
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	ns = startNATS(t, natsDir, port)
	var id string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		r := must[*testclient.Response](t)(alice.Do("PUT", path(roomID)+"/send/m.room.message/d1", map[string]string{"msgtype": "m.text", "body": "d1"}))
		if r.Status == 200 {
			id, _ = r.Body["event_id"].(string)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("send after the log came back: %d %s", r.Status, r.Raw)
		}
	}
	if again := must[string](t)(alice.Send(roomID, "d1", "d1")); again != id {
		t.Fatalf("retry gave %s, want %s", again, id)
	}
	must[string](t)(alice.Send(roomID, "d2", "d2"))
	var got map[string]int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = messageBodies(t, alice, roomID); got["d2"] == 1 {
			break
		}
	}
	if got["d0"] != 1 || got["d1"] != 1 || got["d2"] != 1 {
		t.Fatalf("messages after the outage: %v, want d0, d1, d2 once each", got)
	}
}

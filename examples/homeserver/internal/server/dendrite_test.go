package server_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// dendriteScript is the repository's scripts/dendrite.
func dendriteScript(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "scripts", "dendrite")
}

// startDendrite builds (or finds) Dendrite v0.13.8 with scripts/dendrite
// and starts it on 127.0.0.1. Without GOMATRIXLIB_CI=1 the test is skipped
// when no build is at hand (the first build takes minutes); in CI a
// missing Dendrite fails it.
func startDendrite(t *testing.T) (name string, c *testclient.Client) {
	t.Helper()
	script := dendriteScript(t)
	ci := os.Getenv("GOMATRIXLIB_CI") == "1"
	if !ci {
		home, _ := os.UserHomeDir()
		cached := filepath.Join(home, ".cache", "gomatrixlib", "dendrite-v0.13.8", "dendrite")
		if c := os.Getenv("GOMATRIXLIB_CACHE"); c != "" {
			cached = filepath.Join(c, "dendrite-v0.13.8", "dendrite")
		}
		if _, err := os.Stat(cached); err != nil && os.Getenv("DENDRITE_BIN") == "" {
			t.Skip("no Dendrite build at hand (run scripts/dendrite build, or set DENDRITE_BIN); required in CI")
		}
	}
	if out, err := exec.Command(script, "build").CombinedOutput(); err != nil {
		t.Fatalf("scripts/dendrite build: %v\n%s", err, out)
	}
	fedAddr, clientAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cmd := exec.Command(script, "start", filepath.Join(dir, "dendrite"), fedAddr, clientAddr, fedAddr)
	logf, err := os.Create(filepath.Join(dir, "dendrite.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "dendrite.log")); err == nil {
				lines := strings.Split(string(b), "\n")
				t.Logf("last Dendrite log lines:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
			}
		}
	})
	c = &testclient.Client{Base: "http://" + clientAddr}
	eventually(t, 60*time.Second, "Dendrite's client API", func() error {
		r, err := http.Get(c.Base + "/_matrix/client/versions")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	})
	return fedAddr, c
}

func joinedOn(c *testclient.Client, roomID, userID string) error {
	b, err := c.MustOK("GET", "/rooms/"+url.PathEscape(roomID)+"/joined_members", nil)
	if err != nil {
		return err
	}
	joined, _ := b["joined"].(map[string]any)
	if _, ok := joined[userID]; !ok {
		return fmt.Errorf("%s not joined (joined: %v)", userID, keysOf(joined))
	}
	return nil
}

func notJoinedOn(c *testclient.Client, roomID, userID string) error {
	if joinedOn(c, roomID, userID) == nil {
		return fmt.Errorf("%s still joined", userID)
	}
	return nil
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// exchange sends n messages each way between two users of a room,
// alternating, and checks each arrives in the other's /sync.
func exchange(t *testing.T, roomID string, x, y *testclient.Client, n int, tag string) {
	t.Helper()
	wx, wy := newSyncWaiter(t, x, roomID), newSyncWaiter(t, y, roomID)
	for i := 0; i < 2*n; i++ {
		from, to := x, wy
		if i%2 == 1 {
			from, to = y, wx
		}
		id, err := from.Send(roomID, fmt.Sprintf("%s-%d", tag, i), fmt.Sprintf("%s message %d", tag, i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := to.waitFor(id, 30*time.Second); err != nil {
			t.Fatalf("%s message %d from %s: %v", tag, i, from.UserID, err)
		}
	}
}

// TestFederationDendrite runs the join, send, receive, leave and rejoin
// flow against a real Dendrite v0.13.8 in rooms of version 10, both ways:
// a Dendrite user joins a room created on our server, and our user joins a
// room created on Dendrite.
func TestFederationDendrite(t *testing.T) {
	dname, dave := startDendrite(t)
	if err := dave.Register("dave", "secret-dave-pw"); err != nil {
		t.Fatal(err)
	}
	a := newPeer(t)
	defer a.stop()
	alice := a.user("alice")

	t.Run("dendrite joins ours", func(t *testing.T) {
		created, err := alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "room_version": "10", "name": "ours"})
		if err != nil {
			t.Fatal(err)
		}
		roomID := created["room_id"].(string)
		join := "/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(a.name)
		if _, err := dave.MustOK("POST", join, map[string]any{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "dave's join on our server", func() error { return joinedOn(alice, roomID, dave.UserID) })
		eventually(t, 20*time.Second, "alice on Dendrite", func() error { return joinedOn(dave, roomID, alice.UserID) })
		exchange(t, roomID, alice, dave, 5, "ours")
		if _, err := dave.MustOK("POST", "/rooms/"+url.PathEscape(roomID)+"/leave", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "dave's leave on our server", func() error { return notJoinedOn(alice, roomID, dave.UserID) })
		if _, err := dave.MustOK("POST", join, map[string]any{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "dave's rejoin on our server", func() error { return joinedOn(alice, roomID, dave.UserID) })
		exchange(t, roomID, alice, dave, 2, "ours-again")
	})

	t.Run("ours joins dendrite's", func(t *testing.T) {
		created, err := dave.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat", "room_version": "10", "name": "theirs"})
		if err != nil {
			t.Fatal(err)
		}
		roomID := created["room_id"].(string)
		join := "/join/" + url.PathEscape(roomID) + "?server_name=" + url.QueryEscape(dname)
		if _, err := alice.MustOK("POST", join, map[string]any{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "alice's join on Dendrite", func() error { return joinedOn(dave, roomID, alice.UserID) })
		if err := joinedOn(alice, roomID, dave.UserID); err != nil {
			t.Fatal("our state after the join:", err)
		}
		exchange(t, roomID, alice, dave, 5, "theirs")
		if _, err := alice.MustOK("POST", "/rooms/"+url.PathEscape(roomID)+"/leave", map[string]any{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "alice's leave on Dendrite", func() error { return notJoinedOn(dave, roomID, alice.UserID) })
		if _, err := alice.MustOK("POST", join, map[string]any{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "alice's rejoin on Dendrite", func() error { return joinedOn(dave, roomID, alice.UserID) })
		exchange(t, roomID, alice, dave, 2, "theirs-again")
		// Dendrite's profile through our client API (federation query).
		if _, err := dave.MustOK("PUT", "/profile/"+url.PathEscape(dave.UserID)+"/displayname", map[string]string{"displayname": "Dave D"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "dave's profile through our server", func() error {
			p, err := alice.MustOK("GET", "/profile/"+url.PathEscape(dave.UserID), nil)
			if err != nil {
				return err
			}
			if p["displayname"] != "Dave D" {
				return errors.New("display name not yet changed")
			}
			return nil
		})
	})

}

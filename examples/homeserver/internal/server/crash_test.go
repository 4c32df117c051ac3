package server_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// TestKillRestart runs the real binary, kills it with SIGKILL right after a
// burst of acknowledged sends, starts it again on the same data folder and
// checks that every acknowledged event is there, in order, once, and that
// sync continues from the token taken before the kill.
func TestKillRestart(t *testing.T) {
	bin := buildHomeserver(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	clientAddr, fedAddr := freeAddr(t), freeAddr(t)
	startBin := func() *exec.Cmd {
		cmd := exec.Command(bin, "-no-rate-limits", "-data", data, "-server-name", "crash.test", "-client-addr", clientAddr, "-federation-addr", fedAddr)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if c, err := net.Dial("tcp", clientAddr); err == nil {
				c.Close()
				return cmd
			}
			time.Sleep(50 * time.Millisecond)
		}
		cmd.Process.Kill()
		t.Fatal("homeserver did not start")
		return nil
	}
	cmd := startBin()
	alice := &testclient.Client{Base: "http://" + clientAddr}
	if err := alice.Register("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	room, err := alice.MustOK("POST", "/createRoom", nil)
	if err != nil {
		t.Fatal(err)
	}
	roomID := room["room_id"].(string)
	var acked []string
	for i := 0; i < 5; i++ {
		id, err := alice.Send(roomID, fmt.Sprintf("a%d", i), "before the kill")
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	_, since, err := alice.CollectMessages(roomID, "", 5, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second burst, then SIGKILL as soon as the last send is acknowledged:
	// the sync reader may not have consumed it yet.
	for i := 0; i < 20; i++ {
		id, err := alice.Send(roomID, fmt.Sprintf("b%d", i), "just before the kill")
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, id)
	}
	// Four more sends in flight when the process dies: their answers are
	// lost, and each is retried with its transaction ID after the restart.
	inflight := make(chan struct{}, 4)
	for i := 0; i < 4; i++ {
		go func() {
			inflight <- struct{}{}
			_, _ = alice.Send(roomID, fmt.Sprintf("c%d", i), fmt.Sprintf("in flight %d", i))
		}()
	}
	for i := 0; i < 4; i++ {
		<-inflight
	}
	time.Sleep(time.Duration(time.Now().UnixNano()%20) * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	cmd = startBin()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	more, _, err := alice.CollectMessages(roomID, since, 20, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The in-flight sends may or may not follow the acknowledged ones.
	if len(more) < 20 || len(more) > 24 || strings.Join(more[:20], ",") != strings.Join(acked[5:], ",") {
		t.Fatalf("after the kill, sync from the old token gave %d events, want the %d acknowledged ones in order", len(more), len(acked)-5)
	}
	// The in-flight sends, retried: each stored once, whatever the kill
	// interrupted.
	for i := 0; i < 4; i++ {
		if _, err := alice.Send(roomID, fmt.Sprintf("c%d", i), fmt.Sprintf("in flight %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var bodies map[string]int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if bodies = messageBodies(t, alice, roomID); bodies["in flight 3"] > 0 && bodies["in flight 0"] > 0 {
			break
		}
	}
	for i := 0; i < 4; i++ {
		if n := bodies[fmt.Sprintf("in flight %d", i)]; n != 1 {
			t.Fatalf("in-flight send %d stored %d times after the kill and a retry", i, n)
		}
	}
	all, err := alice.AllMessagesSince(roomID, "s0")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(acked)+4 || strings.Join(all[:len(acked)], ",") != strings.Join(acked, ",") {
		t.Fatalf("history has %d messages, want the %d acknowledged ones in order, then the 4 retried", len(all), len(acked))
	}
	// Sending still works, and the same transaction ID is still idempotent.
	again, err := alice.Send(roomID, "b19", "retry after restart")
	if err != nil || again != acked[len(acked)-1] {
		t.Fatalf("transaction retry after restart: %s %v", again, err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Bug 7: the built binary (the README's command for running it as a
// service) stops cleanly on SIGTERM and on SIGINT (Ctrl-C): exit status 0
// within seconds, and the data folder opens again.
func TestSignalsStopCleanly(t *testing.T) {
	bin := buildHomeserver(t)
	dir := t.TempDir()
	for _, sig := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		clientAddr := freeAddr(t)
		cmd := exec.Command(bin, "-data", filepath.Join(dir, "data"), "-client-addr", clientAddr, "-federation-addr", freeAddr(t))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		up := false
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", clientAddr); err == nil {
				c.Close()
				up = true
			}
		}
		if !up {
			cmd.Process.Kill()
			t.Fatal("homeserver did not start")
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%v: exit %v, want status 0", sig, err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: still running after 10 s", sig)
		}
		if c, err := net.Dial("tcp", clientAddr); err == nil {
			c.Close()
			t.Fatalf("%v: the client port still answers", sig)
		}
	}
	// The README's "go run .": SIGTERM to the go command (which does not
	// pass it on) still stops the server it started.
	clientAddr := freeAddr(t)
	cmd := exec.Command("go", "run", ".", "-data", filepath.Join(dir, "data"), "-client-addr", clientAddr, "-federation-addr", freeAddr(t))
	cmd.Dir = "../.."
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := false
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline) && !up; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", clientAddr); err == nil {
			c.Close()
			up = true
		}
	}
	if !up {
		cmd.Process.Kill()
		t.Fatal("go run: homeserver did not start")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.Dial("tcp", clientAddr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("go run: the server still answers 10 s after SIGTERM to go run (orphaned)")
		}
	}
}

// buildHomeserver builds the real binary (tests that signal the server
// must signal it, not a "go run" parent) and returns its path; it skips
// the test in -short mode.
func buildHomeserver(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the homeserver binary")
	}
	bin := filepath.Join(t.TempDir(), "homeserver")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/gomatrixlib/gomatrixlib/examples/homeserver").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

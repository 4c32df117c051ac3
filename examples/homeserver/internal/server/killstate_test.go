package server_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// TestKillDuringStateChanges kills the real binary with SIGKILL right after
// a burst of acknowledged joins and topic changes (each a new state
// snapshot), starts it again and checks that every acknowledged state
// change is in the current state, and that joins, state changes and sends
// still work on top of it.
func TestKillDuringStateChanges(t *testing.T) {
	bin := buildHomeserver(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	clientAddr, fedAddr := freeAddr(t), freeAddr(t)
	startBin := func() *exec.Cmd {
		cmd := exec.Command(bin, "-no-rate-limits", "-data", data, "-server-name", "kill.test", "-client-addr", clientAddr, "-federation-addr", fedAddr)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", clientAddr); err == nil {
				c.Close()
				return cmd
			}
		}
		cmd.Process.Kill()
		t.Fatal("homeserver did not start")
		return nil
	}
	cmd := startBin()
	base := "http://" + clientAddr
	ok := must[map[string]any](t)
	alice := &testclient.Client{Base: base}
	if err := alice.Register("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"preset": "public_chat"}))["room_id"].(string)
	var users []*testclient.Client
	for i := 0; i < 12; i++ {
		c := &testclient.Client{Base: base}
		if err := c.Register(fmt.Sprintf("u%d", i), "pw"); err != nil {
			t.Fatal(err)
		}
		users = append(users, c)
	}
	topic := ""
	for i, c := range users {
		ok(c.MustOK("POST", path(roomID)+"/join", nil))
		topic = fmt.Sprintf("after %d joins", i+1)
		ok(alice.MustOK("PUT", path(roomID)+"/state/m.room.topic", map[string]string{"topic": topic}))
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	cmd = startBin()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	joined := ok(alice.MustOK("GET", path(roomID)+"/joined_members", nil))["joined"].(map[string]any)
	if len(joined) != len(users)+1 {
		t.Fatalf("%d joined members after the kill, want %d", len(joined), len(users)+1)
	}
	if got := ok(users[3].MustOK("GET", path(roomID)+"/state/m.room.topic", nil))["topic"]; got != topic {
		t.Fatalf("topic after the kill %v, want %q", got, topic)
	}
	// State changes and sends build on the recovered state.
	late := &testclient.Client{Base: base}
	if err := late.Register("late", "pw"); err != nil {
		t.Fatal(err)
	}
	ok(late.MustOK("POST", path(roomID)+"/join", nil))
	ok(users[0].MustOK("POST", path(roomID)+"/leave", nil))
	if r := must[*testclient.Response](t)(users[1].Do("PUT", path(roomID)+"/state/m.room.topic", map[string]string{"topic": "not allowed"})); r.Status != 403 {
		t.Fatalf("a member without power changed the topic: %d", r.Status)
	}
	id := must[string](t)(late.Send(roomID, "x", "after the kill"))
	got, _, err := users[1].CollectMessages(roomID, "", 1, 10*time.Second)
	if err != nil || len(got) != 1 || got[0] != id {
		t.Fatalf("message after the kill: %v %v", got, err)
	}
	joined = ok(alice.MustOK("GET", path(roomID)+"/joined_members", nil))["joined"].(map[string]any)
	if len(joined) != len(users)+1 || joined["@late:kill.test"] == nil || joined["@u0:kill.test"] != nil {
		t.Fatalf("joined members after the join and leave: %v", joined)
	}
}

package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// startPostgres starts a throwaway PostgreSQL cluster from Debian's
// package (initdb and pg_ctl from /usr/lib/postgresql/*/bin) on 127.0.0.1
// and returns its DSN. As root, the cluster runs as the postgres user,
// since initdb refuses root. Without PostgreSQL the test skips locally and
// fails in CI (GOMATRIXLIB_CI=1).
func startPostgres(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("GOMATRIXLIB_CI") == "1" {
			t.Fatalf("PostgreSQL is required in CI: "+format, args...)
		}
		t.Skipf("PostgreSQL not available (apt-get install postgresql): "+format, args...)
	}
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdbs) == 0 {
		missing("no /usr/lib/postgresql/*/bin/initdb")
	}
	bin := filepath.Dir(initdbs[len(initdbs)-1])
	dir, err := os.MkdirTemp("", "homeserver-pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var prefix []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing("running as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		prefix = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(args ...string) {
		t.Helper()
		all := append(append([]string{}, prefix...), args...)
		out, err := exec.Command(all[0], all[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	data := filepath.Join(dir, "data")
	run(filepath.Join(bin, "initdb"), "-D", data, "-U", "homeserver", "--auth=trust", "-E", "UTF8", "--no-sync")
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o",
		fmt.Sprintf("-k %s -p %s -c listen_addresses=127.0.0.1 -c fsync=off", dir, port), "start")
	t.Cleanup(func() {
		all := append(append([]string{}, prefix...), filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
		_ = exec.Command(all[0], all[1:]...).Run()
	})
	return fmt.Sprintf("postgres://homeserver@127.0.0.1:%s/postgres?sslmode=disable", port)
}

// TestPostgres runs the client flow with PostgreSQL storage, including a
// restart on the same database and log store.
func TestPostgres(t *testing.T) {
	dsn := startPostgres(t)
	dataDir := t.TempDir()
	startPG := func() *server.Server {
		s, err := server.Start(server.Config{DataDir: dataDir, PostgresDSN: dsn, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
			ServerName: "pg.test", BcryptCost: 4, NoRateLimits: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := startPG()
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	ok := must[map[string]any](t)
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"name": "pg"}))["room_id"].(string)
	ok(alice.MustOK("POST", path(roomID)+"/invite", map[string]string{"user_id": bob.UserID}))
	ok(bob.MustOK("POST", path(roomID)+"/join", nil))
	var sent []string
	for i := 0; i < 10; i++ {
		sent = append(sent, must[string](t)(alice.Send(roomID, fmt.Sprintf("t%d", i), "over postgres")))
	}
	ids, since, err := bob.CollectMessages(roomID, "", 10, 10*time.Second)
	if err != nil || strings.Join(ids, ",") != strings.Join(sent, ",") {
		t.Fatalf("bob saw %d of 10 messages: %v", len(ids), err)
	}
	if r := must[*testclient.Response](t)(bob.Do("PUT", path(roomID)+"/state/m.room.name", map[string]string{"name": "x"})); r.Status != 403 {
		t.Fatalf("bob renamed the room: %d %s", r.Status, r.Raw)
	}
	s.Close()

	s = startPG()
	defer s.Close()
	alice.Base, bob.Base = "http://"+s.ClientAddr(), "http://"+s.ClientAddr()
	for i := 10; i < 15; i++ {
		sent = append(sent, must[string](t)(alice.Send(roomID, fmt.Sprintf("t%d", i), "after restart")))
	}
	more, _, err := bob.CollectMessages(roomID, since, 5, 10*time.Second)
	if err != nil || strings.Join(more, ",") != strings.Join(sent[10:], ",") {
		t.Fatalf("after restart bob saw %d of 5 new messages: %v", len(more), err)
	}
	all, err := bob.AllMessagesSince(roomID, "s0")
	if err != nil || strings.Join(all, ",") != strings.Join(sent, ",") {
		t.Fatalf("history has %d of 15 messages: %v", len(all), err)
	}
}

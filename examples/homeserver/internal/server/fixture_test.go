package server_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/db"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// oldFixture describes testdata/olddata.tar.gz: a data folder written by
// the homeserver before state snapshots (commit 586f1ba, rs_events with a
// state_after column), for the migration test.
type oldFixture struct {
	ServerName string   `json:"server_name"`
	RoomID     string   `json:"room_id"`
	Messages   []string `json:"messages"` // event IDs, oldest first
	Users      []string `json:"users"`    // localparts; password "secret-<localpart>"
	Since      string   `json:"since"`    // bob's sync token before the last 5 messages
}

const fixtureServerName = "old.test"

// TestMakeOldFixture writes testdata/olddata.tar.gz and
// testdata/olddata.json with a homeserver binary built from the old schema:
//
//	git worktree add /tmp/old 586f1ba
//	(cd /tmp/old/examples/homeserver && go build -o /tmp/old-homeserver .)
//	HOMESERVER_OLD_BINARY=/tmp/old-homeserver go test -run TestMakeOldFixture ./internal/server
//
// It skips unless HOMESERVER_OLD_BINARY is set.
func TestMakeOldFixture(t *testing.T) {
	bin := os.Getenv("HOMESERVER_OLD_BINARY")
	if bin == "" {
		t.Skip("set HOMESERVER_OLD_BINARY to a homeserver binary of the old schema")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	clientAddr, fedAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "-no-rate-limits", "-data", data, "-server-name", fixtureServerName, "-client-addr", clientAddr, "-federation-addr", fedAddr)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	alice := &testclient.Client{Base: "http://" + clientAddr}
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = alice.Register("alice", "secret-alice"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	bob, carol := &testclient.Client{Base: alice.Base}, &testclient.Client{Base: alice.Base}
	ok := must[map[string]any](t)
	if err := bob.Register("bob", "secret-bob"); err != nil {
		t.Fatal(err)
	}
	if err := carol.Register("carol", "secret-carol"); err != nil {
		t.Fatal(err)
	}
	fx := oldFixture{ServerName: fixtureServerName, Users: []string{"alice", "bob", "carol"}}
	fx.RoomID = ok(alice.MustOK("POST", "/createRoom", map[string]any{"name": "Old", "topic": "before snapshots", "preset": "public_chat"}))["room_id"].(string)
	ok(bob.MustOK("POST", path(fx.RoomID)+"/join", nil))
	for i := 0; i < 10; i++ {
		fx.Messages = append(fx.Messages, must[string](t)(alice.Send(fx.RoomID, fmt.Sprintf("a%d", i), fmt.Sprintf("old message %d", i))))
	}
	ok(alice.MustOK("PUT", path(fx.RoomID)+"/state/m.room.topic", map[string]string{"topic": "changed"}))
	ok(carol.MustOK("POST", path(fx.RoomID)+"/join", nil))
	ok(carol.MustOK("POST", path(fx.RoomID)+"/leave", nil))
	_, fx.Since, err = bob.CollectMessages(fx.RoomID, "", 10, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		fx.Messages = append(fx.Messages, must[string](t)(bob.Send(fx.RoomID, fmt.Sprintf("b%d", i), fmt.Sprintf("old reply %d", i))))
	}
	if _, _, err := alice.CollectMessages(fx.RoomID, fx.Since, 5, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if err := writeTarGz(filepath.Join("testdata", "olddata.tar.gz"), data); err != nil {
		t.Fatal(err)
	}
	meta, _ := json.MarshalIndent(fx, "", "  ")
	if err := os.WriteFile(filepath.Join("testdata", "olddata.json"), append(meta, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTarGz(dst, src string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(tw, in)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// extractTarGz unpacks a fixture into dst, refusing paths that leave it.
func extractTarGz(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.FromSlash(hdr.Name)
		if !filepath.IsLocal(name) || strings.Contains(hdr.Name, "..") {
			t.Fatalf("fixture entry %q leaves the folder", hdr.Name)
		}
		p := filepath.Join(dst, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, io.LimitReader(tr, 64<<20)); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}
}

// TestStartOnOldData starts the server on a data folder written by the
// state_after schema (testdata/olddata.tar.gz): the database is migrated on
// start, and state, history, sync from a token taken before the migration,
// and new sends work.
func TestStartOnOldData(t *testing.T) {
	fx, dir := oldData(t)
	s, err := server.Start(server.Config{DataDir: dir, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: fx.ServerName, BcryptCost: 4, NoRateLimits: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkOldData(t, s, fx)
}

// checkOldData checks a server started on the fixture: state, members,
// history, sync from an old token, lazy-loaded sync, sends and state
// changes with auth.
func checkOldData(t *testing.T, s *server.Server, fx oldFixture) {
	t.Helper()
	login := func(user string) *testclient.Client {
		c := client(s)
		b, err := c.MustOK("POST", "/login", map[string]any{"type": "m.login.password", "identifier": map[string]string{"type": "m.id.user", "user": user}, "password": "secret-" + user})
		if err != nil {
			t.Fatal(err)
		}
		c.Token, c.UserID = b["access_token"].(string), b["user_id"].(string)
		return c
	}
	alice, bob, carol := login("alice"), login("bob"), login("carol")
	ok := must[map[string]any](t)
	if n := ok(bob.MustOK("GET", path(fx.RoomID)+"/state/m.room.name", nil)); n["name"] != "Old" {
		t.Fatalf("name after migration: %v", n)
	}
	if n := ok(bob.MustOK("GET", path(fx.RoomID)+"/state/m.room.topic", nil)); n["topic"] != "changed" {
		t.Fatalf("topic after migration: %v", n)
	}
	if n := ok(alice.MustOK("GET", path(fx.RoomID)+"/state/m.room.member/@carol:"+fx.ServerName, nil)); n["membership"] != "leave" {
		t.Fatalf("carol's membership after migration: %v", n)
	}
	members := ok(alice.MustOK("GET", path(fx.RoomID)+"/joined_members", nil))["joined"].(map[string]any)
	if len(members) != 2 || members["@alice:old.test"] == nil || members["@bob:old.test"] == nil {
		t.Fatalf("joined members after migration: %v", members)
	}
	all, err := bob.AllMessagesSince(fx.RoomID, "s0")
	if err != nil || strings.Join(all, ",") != strings.Join(fx.Messages, ",") {
		t.Fatalf("history after migration: %d of %d messages: %v", len(all), len(fx.Messages), err)
	}
	// Sync from a token of the old server continues without gaps.
	more, _, err := bob.CollectMessages(fx.RoomID, fx.Since, 5, 10*time.Second)
	if err != nil || strings.Join(more, ",") != strings.Join(fx.Messages[10:], ",") {
		t.Fatalf("sync from the old token: %v %v", more, err)
	}
	// The sync reader's state columns were filled in from the old rows.
	room, _ := syncWith(t, bob, "", `{"room":{"timeline":{"limit":3},"state":{"lazy_load_members":true}}}`, fx.RoomID)
	if got := stateKeys(room); !slices.Contains(got, "m.room.name|") || !slices.Contains(got, "m.room.topic|") ||
		!slices.Contains(got, "m.room.member|@bob:old.test") || slices.Contains(got, "m.room.member|@carol:old.test") {
		t.Fatalf("lazy-loaded state after migration: %v", got)
	}
	// Sends and state changes work on the migrated state.
	sent := must[string](t)(alice.Send(fx.RoomID, "new1", "after migration"))
	got, _, err := bob.CollectMessages(fx.RoomID, fx.Since, 6, 10*time.Second)
	if err != nil || got[len(got)-1] != sent {
		t.Fatalf("bob did not see the new message: %v %v", got, err)
	}
	ok(carol.MustOK("POST", path(fx.RoomID)+"/join", nil))
	if r := must[*testclient.Response](t)(carol.Do("PUT", path(fx.RoomID)+"/state/m.room.name", map[string]string{"name": "carol's"})); r.Status != 403 {
		t.Fatalf("carol renamed the room: %d %s", r.Status, r.Raw)
	}
	ok(alice.MustOK("PUT", path(fx.RoomID)+"/state/m.room.name", map[string]string{"name": "Migrated"}))
	if n := ok(carol.MustOK("GET", path(fx.RoomID)+"/state/m.room.name", nil)); n["name"] != "Migrated" {
		t.Fatalf("name after the change: %v", n)
	}
}

func oldData(t *testing.T) (oldFixture, string) {
	t.Helper()
	var fx oldFixture
	raw, err := os.ReadFile(filepath.Join("testdata", "olddata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	extractTarGz(t, filepath.Join("testdata", "olddata.tar.gz"), dir)
	return fx, dir
}

// TestStartOnOldDataPostgres is TestStartOnOldData on PostgreSQL: the
// fixture's SQLite tables, created with the old schema's statements (as
// the old code would have created them on PostgreSQL) and copied row by
// row, are migrated when the server starts on them.
func TestStartOnOldDataPostgres(t *testing.T) {
	dsn := startPostgres(t)
	fx, dir := oldData(t)
	lite, err := db.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := db.Open("", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	type table struct{ name, sql string }
	var tables []table
	var indexes []string
	rows, err := lite.Query(`SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type DESC`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ, name, sql string
		if err := rows.Scan(&typ, &name, &sql); err != nil {
			t.Fatal(err)
		}
		if typ == "table" {
			tables = append(tables, table{name, sql})
		} else {
			indexes = append(indexes, sql)
		}
	}
	rows.Close()
	if len(tables) < 8 {
		t.Fatalf("fixture has %d tables", len(tables))
	}
	for _, tb := range tables {
		if _, err := pg.Exec(tb.sql); err != nil {
			t.Fatalf("%s: %v", tb.sql, err)
		}
		copyRows(t, lite, pg, tb.name)
	}
	for _, ix := range indexes {
		if _, err := pg.Exec(ix); err != nil {
			t.Fatalf("%s: %v", ix, err)
		}
	}
	for _, seq := range [][2]string{{"rs_events", "nid"}, {"sync_events", "pos"}} {
		if _, err := pg.Exec(`SELECT setval(pg_get_serial_sequence('` + seq[0] + `', '` + seq[1] + `'), (SELECT MAX(` + seq[1] + `) FROM ` + seq[0] + `))`); err != nil {
			t.Fatal(err)
		}
	}
	lite.Close()
	if err := os.Remove(filepath.Join(dir, "homeserver.db")); err != nil {
		t.Fatal(err)
	}
	s, err := server.Start(server.Config{DataDir: dir, PostgresDSN: dsn, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: fx.ServerName, BcryptCost: 4, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var dropped int
	if err := pg.QueryRow(`SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'rs_events' AND column_name = 'state_after'`).Scan(&dropped); err != nil || dropped != 0 {
		t.Fatalf("state_after still there after the migration: %d %v", dropped, err)
	}
	checkOldData(t, s, fx)
}

func copyRows(t *testing.T, from, to *db.DB, tableName string) {
	t.Helper()
	rows, err := from.Query(`SELECT * FROM ` + tableName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	insert := `INSERT INTO ` + tableName + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if _, err := to.Exec(insert, vals...); err != nil {
			t.Fatalf("%s: %v", insert, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

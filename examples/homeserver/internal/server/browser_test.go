package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

// TestWebClientInBrowser runs a real web client, hydrogen-view-sdk (npm,
// testdata/browser, bundled with esbuild), in headless Chromium (Debian's
// chromium, driven by puppeteer-core): it logs in as alice, opens a room,
// sends a message, and shows bob's message on screen; bob sees alice's
// message through /sync. The screenshot goes to $GOMATRIXLIB_ARTIFACTS (or
// the temporary folder) as browser.png; its path is logged. No request may
// be answered 404 or 5xx. Without Chromium or the npm packages the test
// skips locally and fails in CI (GOMATRIXLIB_CI=1).
func TestWebClientInBrowser(t *testing.T) {
	dir := filepath.Join("testdata", "browser")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		skipOrFail(t, "chromium is not installed (apt-get install chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		skipOrFail(t, "node is not installed (apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "hydrogen-view-sdk")); err != nil {
		skipOrFail(t, "the browser test's npm packages are not installed (cd "+dir+" && npm ci)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "node", "build.mjs")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the page: %v\n%s", err, out)
	}

	var logBuf syncBuffer
	s := startLogged(t, &logBuf)
	defer s.Close()
	ok := must[map[string]any](t)
	alice, bob := register(t, s, "alice"), register(t, s, "bob")
	roomID := ok(alice.MustOK("POST", "/createRoom", map[string]any{"name": "Browser room", "invite": []string{bob.UserID}}))["room_id"].(string)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := must[*testclient.Response](t)(bob.Do("POST", path(roomID)+"/join", nil))
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's join: %d %s", r.Status, r.Raw)
		}
	}
	must[string](t)(bob.Send(roomID, "b1", "hello from bob"))

	page := httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "dist"))))
	defer page.Close()
	q := url.Values{"hs": {"http://" + s.ClientAddr()}, "user": {"alice"}, "password": {"secret-alice"}, "room": {roomID}, "text": {"hello from hydrogen"}}
	artifacts := os.Getenv("GOMATRIXLIB_ARTIFACTS")
	if artifacts == "" {
		artifacts = os.TempDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "browser.png")
	run := exec.CommandContext(ctx, "node", "run.mjs", page.URL+"/index.html?"+q.Encode(), "hello from bob", shot)
	run.Dir = dir
	run.Env = append(os.Environ(), "CHROMIUM="+chromium)
	out, err := run.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nOK") {
		t.Fatalf("browser: %v\n%s\nrefused requests:\n%s", err, out, strings.Join(refusedRequests(logBuf.String()), "\n"))
	}
	t.Logf("screenshot: %s", shot)
	if _, _, err := bob.CollectMessages(roomID, "", 2, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := messageBodies(t, bob, roomID)["hello from hydrogen"]; n != 1 {
		t.Fatalf("bob sees hydrogen's message %d times, want once", n)
	}
	if bad := refusedRequests(logBuf.String()); len(bad) > 0 {
		t.Fatalf("the server answered the web client's requests with 404 or 5xx:\n%s", strings.Join(bad, "\n"))
	}
}

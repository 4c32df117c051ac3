package server_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/testclient"
)

func testPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func rawGet(t *testing.T, c *testclient.Client, url string, auth bool) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.Base+url, nil)
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestMedia: upload, download on the authenticated and legacy endpoints,
// thumbnails (crop, scale, never upscaled), the size limit (413 before
// anything is stored) and refused media IDs.
func TestMedia(t *testing.T) {
	dir := t.TempDir()
	s, err := server.Start(server.Config{DataDir: dir, ClientAddr: "127.0.0.1:0", FederationAddr: "127.0.0.1:0",
		ServerName: "test.local", BcryptCost: 4, NoRateLimits: true, MaxUploadBytes: 200_000, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice := register(t, s, "alice")
	pic := testPNG(t, 400, 300)
	req, _ := http.NewRequest("POST", alice.Base+"/_matrix/media/v3/upload?filename=pic.png", bytes.NewReader(pic))
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	req.Header.Set("Content-Type", "image/png")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"content_uri":"mxc://test.local/`) {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	mediaID := strings.TrimSuffix(strings.SplitN(string(body), "mxc://test.local/", 2)[1], "\"}\n")

	for _, u := range []string{"/_matrix/client/v1/media/download/test.local/" + mediaID, "/_matrix/media/v3/download/test.local/" + mediaID} {
		resp, got := rawGet(t, alice, u, strings.Contains(u, "/client/"))
		if resp.StatusCode != 200 || !bytes.Equal(got, pic) || resp.Header.Get("Content-Type") != "image/png" ||
			resp.Header.Get("Content-Disposition") != `inline; filename=pic.png` {
			t.Fatalf("GET %s: %d %v, %d bytes", u, resp.StatusCode, resp.Header, len(got))
		}
	}
	if resp, _ := rawGet(t, alice, "/_matrix/client/v1/media/download/test.local/"+mediaID, false); resp.StatusCode != 401 {
		t.Fatalf("authenticated download without a token: %d", resp.StatusCode)
	}
	thumb := func(q string) image.Config {
		t.Helper()
		resp, got := rawGet(t, alice, "/_matrix/client/v1/media/thumbnail/test.local/"+mediaID+"?"+q, true)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("thumbnail %s: %d %s", q, resp.StatusCode, got)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(got))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	if c := thumb("width=96&height=96&method=crop"); c.Width != 96 || c.Height != 96 {
		t.Fatalf("96x96 crop: %dx%d", c.Width, c.Height)
	}
	if c := thumb("width=320&height=320&method=scale"); c.Width != 320 || c.Height != 240 {
		t.Fatalf("320 scale: %dx%d", c.Width, c.Height)
	}
	if c := thumb("width=800&height=600"); c.Width != 400 || c.Height != 300 {
		t.Fatalf("no upscaling: %dx%d", c.Width, c.Height)
	}

	// Too large: 413 before storing anything.
	before, _ := os.ReadDir(filepath.Join(dir, "media"))
	big := bytes.Repeat([]byte("x"), 300_000)
	for _, chunked := range []bool{false, true} {
		var rd io.Reader = bytes.NewReader(big)
		if chunked {
			rd = io.MultiReader(bytes.NewReader(big)) // no Content-Length
		}
		req, _ := http.NewRequest("POST", alice.Base+"/_matrix/media/v3/upload", rd)
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), "M_TOO_LARGE") {
			t.Fatalf("oversized upload (chunked %v): %d %s", chunked, resp.StatusCode, b)
		}
	}
	after, _ := os.ReadDir(filepath.Join(dir, "media"))
	if len(after) != len(before) {
		t.Fatalf("an oversized upload left files: %d before, %d after", len(before), len(after))
	}
	cfg := must[map[string]any](t)((&testclient.Client{Base: alice.Base, Token: alice.Token, Prefix: "/_matrix/client/v1"}).MustOK("GET", "/media/config", nil))
	if cfg["m.upload.size"] != float64(200_000) {
		t.Fatalf("media config: %v", cfg)
	}

	// Bad IDs and remote media.
	for _, tc := range []struct {
		url    string
		status int
	}{
		{"/_matrix/media/v3/download/test.local/..%2F..%2Fhomeserver.db", 400},
		{"/_matrix/media/v3/download/test.local/%2E%2E", 400},
		{"/_matrix/media/v3/download/test.local/nosuchmedia", 404},
		{"/_matrix/media/v3/download/other.server/" + mediaID, 404},
		{"/_matrix/client/v1/media/thumbnail/test.local/" + mediaID + "?width=x&height=1", 400},
		{"/_matrix/client/v1/media/thumbnail/test.local/" + mediaID + "?width=10&height=10&method=zoom", 400},
	} {
		if resp, b := rawGet(t, alice, tc.url, true); resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s, want %d", tc.url, resp.StatusCode, b, tc.status)
		}
	}
}

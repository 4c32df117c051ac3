package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMatrixNio drives the server with matrix-nio (Debian's
// python3-matrix-nio, run with Debian's /usr/bin/python3): two users,
// invite, join, message, name and topic, typing, read receipt, redaction,
// each seen through the other's sync, and no request answered 404 or 5xx.
// Without nio the test skips locally; in CI (GOMATRIXLIB_CI=1) it fails.
func TestMatrixNio(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import nio").Run(); err != nil {
		if os.Getenv("GOMATRIXLIB_CI") == "1" {
			t.Fatalf("matrix-nio is required in CI: %v (apt-get install python3-matrix-nio)", err)
		}
		t.Skipf("matrix-nio not installed (apt-get install python3-matrix-nio): %v", err)
	}
	var logBuf syncBuffer
	s := startLogged(t, &logBuf)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/nio_client.py", "http://"+s.ClientAddr()).CombinedOutput()
	if err != nil {
		t.Fatalf("nio client failed: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "OK !") {
		t.Fatalf("unexpected nio output: %s", out)
	}
	if bad := refusedRequests(logBuf.String()); len(bad) > 0 {
		t.Fatalf("the server answered matrix-nio requests with 404 or 5xx:\n%s", strings.Join(bad, "\n"))
	}
}

// Command homeserver is gomatrixlib's reference homeserver: a minimal,
// log-based Matrix homeserver built on the library's packages. Started
// without flags it creates ./data (signing key, self-signed TLS
// certificate, SQLite database, embedded NATS JetStream store) and listens
// on 127.0.0.1:8008 (client API, HTTP) and 127.0.0.1:8448 (federation API,
// HTTPS).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gomatrixlib/gomatrixlib/examples/homeserver/internal/server"
)

func main() {
	var cfg server.Config
	flag.StringVar(&cfg.ServerName, "server-name", "", "Matrix server name (default localhost:<federation port>)")
	flag.StringVar(&cfg.DataDir, "data", "data", "data folder: signing key, TLS certificate, database, log store")
	flag.StringVar(&cfg.ClientAddr, "client-addr", "127.0.0.1:8008", "client API listen address (HTTP)")
	flag.StringVar(&cfg.FederationAddr, "federation-addr", "127.0.0.1:8448", "federation API listen address (HTTPS)")
	flag.StringVar(&cfg.NATSURL, "nats", "", "external NATS URL with JetStream (default: embedded)")
	flag.StringVar(&cfg.PostgresDSN, "postgres", "", "PostgreSQL DSN, e.g. postgres://user:pass@127.0.0.1/homeserver (default: SQLite in the data folder)")
	flag.Int64Var(&cfg.MaxUploadBytes, "max-upload-bytes", 50<<20, "media upload size limit in bytes")
	flag.StringVar(&cfg.Registration, "registration", "", "registration: open, token or closed (default: open on a loopback client address, token otherwise)")
	tokens := flag.String("registration-tokens", "", "comma-separated registration tokens (for -registration token)")
	flag.BoolVar(&cfg.NoRateLimits, "no-rate-limits", false, "turn off the rate limits on login, registration and sends")
	flag.BoolVar(&cfg.AllowPrivateDestinations, "allow-private-destinations", false, "let outbound federation reach loopback and private addresses (UNSAFE outside tests and private deployments)")
	flag.BoolVar(&cfg.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "do not verify other servers' TLS certificates (UNSAFE outside tests)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: homeserver [flags]\n\nA minimal log-based Matrix homeserver built on gomatrixlib.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *tokens != "" {
		cfg.RegistrationTokens = strings.Split(*tokens, ",")
	}
	// Catch the signals before starting, so that one arriving during start
	// still closes the logs and the database cleanly.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	if underGoRun() {
		go stopWhenParentExits(sig)
	}
	s, err := server.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "homeserver:", err)
		os.Exit(1)
	}
	fmt.Printf("homeserver %s: client API http://%s, federation API https://%s\n", s.ServerName(), s.ClientAddr(), s.FederationAddr())
	<-sig
	s.Close()
}

// underGoRun reports whether this process is a binary that "go run" built
// into its temporary build folder.
func underGoRun() bool {
	exe, err := os.Executable()
	return err == nil && strings.Contains(filepath.ToSlash(exe), "/go-build")
}

// stopWhenParentExits sends SIGTERM's stand-in on sig when the parent
// process goes away. "go run" does not pass SIGTERM on to the program it
// started, so without this a service manager stopping "go run ." would
// leave the server running as an orphan.
func stopWhenParentExits(sig chan<- os.Signal) {
	parent := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			sig <- syscall.SIGTERM
			return
		}
	}
}

// Command matrixfed is a federation checker and signing tool for Matrix
// operators and bridge authors, built on gomatrixlib.
//
//	matrixfed check [flags] <server name>     discovery, TLS, keys and version
//	matrixfed canonicalize [file]              canonical JSON of a JSON text
//	matrixfed genkey [-id ed25519:a_xyz] [-pem] [key file]
//	                                           a new signing key; prints its key ID and public key
//	matrixfed pubkey [key file]                key ID and public key of a key file
//	matrixfed sign-json -key F -server S [file]
//	matrixfed verify-json -server S -key-id K -public-key B64 [file]
//	matrixfed sign-event -key F -server S -room-version V [file]
//	matrixfed verify-event -server S -key-id K -public-key B64 -room-version V [file]
//
// Key files are read in Synapse's form ("ed25519 <version> <seed>") or
// Dendrite's (a MATRIX PRIVATE KEY PEM block). Input is read from the
// file, or standard input when the file is absent or "-". Exit status: 0
// success, 1 a check or verification failed, 2 usage.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gomatrixlib/gomatrixlib/canonicaljson"
	"github.com/gomatrixlib/gomatrixlib/federation"
	"github.com/gomatrixlib/gomatrixlib/hashing"
	"github.com/gomatrixlib/gomatrixlib/keys"
	"github.com/gomatrixlib/gomatrixlib/roomversion"
	"github.com/gomatrixlib/gomatrixlib/serverdiscovery"
	"github.com/gomatrixlib/gomatrixlib/signing"
)

const usage = `matrixfed: Matrix federation checker and signing tool

Usage:
  matrixfed check [-json] [-dns host:port] [-insecure] [-allow-private] <server name>
      resolve a server name, check its TLS certificate, keys and version
  matrixfed canonicalize [-strict] [file]
      print the canonical JSON of a JSON text
  matrixfed genkey [-id ed25519:a_xyz] [-pem] [key file]
      make a signing key (Synapse's one-line form, or Dendrite's PEM with
      -pem); write it to the key file, or to standard output without one;
      print its key ID and public key
  matrixfed pubkey [key file]
      print the key ID and public key of a key file (either form)
  matrixfed sign-json -key keyfile -server name [file]
  matrixfed verify-json -server name -key-id ed25519:x -public-key base64 [file]
  matrixfed sign-event -key keyfile -server name -room-version N [file]
  matrixfed verify-event -server name -key-id ed25519:x -public-key base64 -room-version N [file]

Run "matrixfed <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmds := map[string]func([]string, io.Reader, io.Writer) error{
		"check": cmdCheck, "canonicalize": cmdCanonicalize, "genkey": cmdGenkey, "pubkey": cmdPubkey,
		"sign-json": cmdSignJSON, "verify-json": cmdVerifyJSON, "sign-event": cmdSignEvent, "verify-event": cmdVerifyEvent,
	}
	f, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "matrixfed: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := f(args[1:], stdin, stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "matrixfed %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "matrixfed %s: %v\n", args[0], err)
		return 1
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// input reads the optional file argument, or stdin, bounded to 16 MiB.
func input(fs *flag.FlagSet, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if fs.NArg() > 1 {
		return nil, usageError{"at most one input file"}
	}
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 16<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 16<<20 {
		return nil, errors.New("input larger than 16 MiB")
	}
	return b, nil
}

func cmdCanonicalize(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("canonicalize")
	strict := fs.Bool("strict", false, "apply the number rules of room versions 6 and later")
	if err := fs.Parse(args); err != nil {
		return err
	}
	in, err := input(fs, stdin)
	if err != nil {
		return err
	}
	out, err := canonicaljson.Append(nil, in, canonicaljson.Options{Strict: *strict})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func cmdGenkey(args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("genkey")
	keyID := fs.String("id", "ed25519:a_"+fmt.Sprint(time.Now().Unix()%100000), "key ID")
	asPEM := fs.Bool("pem", false, "write Dendrite's PEM form instead of Synapse's one-line form")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError{"at most one key file"}
	}
	k, err := signing.GenerateKey(*keyID)
	if err != nil {
		return usageError{err.Error()}
	}
	var text []byte
	if *asPEM {
		text = k.MarshalPEM()
	} else {
		line, _ := k.MarshalText()
		text = append(line, '\n')
	}
	path := fs.Arg(0)
	if path == "" || path == "-" {
		// The key goes to standard output (for "genkey > file"), its
		// public half to standard error.
		if _, err := stdout.Write(text); err != nil {
			return err
		}
		return printPublic(os.Stderr, k)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err // an existing key file is never overwritten
	}
	if _, err := f.Write(text); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return printPublic(stdout, k)
}

func cmdPubkey(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("pubkey")
	if err := fs.Parse(args); err != nil {
		return err
	}
	in, err := input(fs, stdin)
	if err != nil {
		return err
	}
	k, err := signing.ParseKey(strings.TrimSpace(string(in)))
	if err != nil {
		return err
	}
	return printPublic(stdout, k)
}

// printPublic prints what other servers and verify-* commands need to
// know of a key.
func printPublic(w io.Writer, k *signing.Key) error {
	_, err := fmt.Fprintf(w, "Key ID           %s\nPublic key       %s\n", k.KeyID(), k.PublicBase64())
	return err
}

func loadKey(path string) (*signing.Key, error) {
	if path == "" {
		return nil, usageError{"-key is required"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return signing.ParseKey(strings.TrimSpace(string(b)))
}

func cmdSignJSON(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("sign-json")
	keyFile := fs.String("key", "", "key file (Synapse's \"ed25519 <version> <seed>\" or Dendrite's PEM)")
	server := fs.String("server", "", "signing server name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	if *server == "" {
		return usageError{"-server is required"}
	}
	in, err := input(fs, stdin)
	if err != nil {
		return err
	}
	out, err := signing.SignJSON(*server, k.KeyID(), k.PrivateKey(), in)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func publicKeyFlags(fs *flag.FlagSet) (server, keyID, pub *string) {
	return fs.String("server", "", "signing server name"), fs.String("key-id", "", "key ID, e.g. ed25519:a_xyz"), fs.String("public-key", "", "public key, unpadded base64")
}

func decodePub(server, keyID, pub string) (ed25519.PublicKey, error) {
	if server == "" || keyID == "" || pub == "" {
		return nil, usageError{"-server, -key-id and -public-key are required"}
	}
	b, err := signing.DecodeBase64(pub)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, usageError{"-public-key is not a base64 ed25519 public key"}
	}
	return b, nil
}

func cmdVerifyJSON(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("verify-json")
	server, keyID, pubB64 := publicKeyFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pub, err := decodePub(*server, *keyID, *pubB64)
	if err != nil {
		return err
	}
	in, err := input(fs, stdin)
	if err != nil {
		return err
	}
	if err := signing.VerifyJSON(*server, *keyID, pub, in); err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, "signature OK")
	return err
}

func rulesFlag(fs *flag.FlagSet) *string {
	return fs.String("room-version", roomversion.Default, "room version of the event")
}

func cmdSignEvent(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("sign-event")
	keyFile := fs.String("key", "", "key file (Synapse's \"ed25519 <version> <seed>\" or Dendrite's PEM)")
	server := fs.String("server", "", "signing server name")
	version := rulesFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	k, err := loadKey(*keyFile)
	if err != nil {
		return err
	}
	rules, err := roomversion.Get(*version)
	if err != nil {
		return usageError{err.Error()}
	}
	if *server == "" {
		return usageError{"-server is required"}
	}
	in, err := input(fs, stdin)
	if err != nil {
		return err
	}
	out, err := signing.SignEvent(rules, *server, k.KeyID(), k.PrivateKey(), in)
	if err != nil {
		return err
	}
	eventID, err := hashing.EventID(rules, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "event ID %s\n", eventID)
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

// oneKey answers key lookups with the single key given on the command line.
type oneKey struct {
	server, keyID string
	pub           ed25519.PublicKey
}

func (o oneKey) VerifyKey(_ context.Context, server, keyID string, _ time.Time) (ed25519.PublicKey, error) {
	if server == o.server && keyID == o.keyID {
		return o.pub, nil
	}
	return nil, fmt.Errorf("%w: %s %s (only %s %s was given)", signing.ErrUnknownKey, server, keyID, o.server, o.keyID)
}

func cmdVerifyEvent(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("verify-event")
	server, keyID, pubB64 := publicKeyFlags(fs)
	version := rulesFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	pub, err := decodePub(*server, *keyID, *pubB64)
	if err != nil {
		return err
	}
	rules, err := roomversion.Get(*version)
	if err != nil {
		return usageError{err.Error()}
	}
	in, err := input(fs, stdin)
	if err != nil {
		return err
	}
	err = signing.VerifyEvent(context.Background(), rules, in, oneKey{*server, *keyID, pub})
	if errors.Is(err, hashing.ErrContentHashMismatch) {
		return fmt.Errorf("signatures OK but the content hash does not match: servers keep this event only in redacted form")
	}
	if err != nil {
		return err
	}
	eventID, _ := hashing.EventID(rules, in)
	_, err = fmt.Fprintf(stdout, "event %s: signatures and content hash OK\n", eventID)
	return err
}

// Report is the result of check, printed as text or JSON.
type Report struct {
	ServerName string       `json:"server_name"`
	Discovery  *Discovery   `json:"discovery,omitempty"`
	TLS        []TLSReport  `json:"tls,omitempty"`
	Keys       *KeysReport  `json:"keys,omitempty"`
	Version    *VersionInfo `json:"version,omitempty"`
	Errors     []string     `json:"errors,omitempty"`
	OK         bool         `json:"ok"`
}

// Discovery is what server name resolution found.
type Discovery struct {
	Step          string   `json:"step"`
	Delegated     string   `json:"delegated_server_name,omitempty"`
	WellKnownNote string   `json:"well_known_error,omitempty"`
	Addresses     []string `json:"addresses"`
	Host          string   `json:"host_header"`
	TLSServerName string   `json:"tls_server_name"`
}

// TLSReport describes the certificate of one address.
type TLSReport struct {
	Address   string    `json:"address"`
	Subject   string    `json:"subject,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	IPs       []string  `json:"ip_addresses,omitempty"`
	NotAfter  time.Time `json:"not_after,omitempty"`
	Verified  bool      `json:"verified"`
	VerifyErr string    `json:"verify_error,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// KeysReport describes the fetched server keys.
type KeysReport struct {
	ValidUntil time.Time         `json:"valid_until"`
	VerifyKeys map[string]string `json:"verify_keys"`
	OldKeys    []string          `json:"old_verify_keys,omitempty"`
	Verified   bool              `json:"self_signatures_verified"`
}

// VersionInfo is the server's implementation.
type VersionInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func cmdCheck(args []string, _ io.Reader, stdout io.Writer) error {
	fs := newFlags("check")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	dnsServer := fs.String("dns", "", "DNS resolver host:port for every lookup (default: the system resolver for addresses, /etc/resolv.conf for SRV)")
	insecure := fs.Bool("insecure", false, "do not verify TLS certificates (self-signed test servers); facts are still reported")
	allowPrivate := fs.Bool("allow-private", false, "allow loopback and private addresses (local test servers)")
	timeout := fs.Duration("timeout", 20*time.Second, "overall time limit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want exactly one server name"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rep := check(ctx, fs.Arg(0), *dnsServer, *insecure, *allowPrivate)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK {
		return errors.New("federation check failed")
	}
	return nil
}

func check(ctx context.Context, serverName, dnsServer string, insecure, allowPrivate bool) *Report {
	rep := &Report{ServerName: serverName}
	fail := func(format string, a ...any) { rep.Errors = append(rep.Errors, fmt.Sprintf(format, a...)) }
	var guard serverdiscovery.Guard
	if allowPrivate {
		guard.Allow = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	}
	res := &serverdiscovery.Resolver{DNSServer: dnsServer, Guard: guard}
	if dnsServer == "" {
		// Host names resolve as for any other program (/etc/hosts, so
		// localhost too); SRV records come from /etc/resolv.conf.
		res.LookupNetIP = net.DefaultResolver.LookupNetIP
	}
	if insecure {
		res.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: res.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	r, err := res.Resolve(ctx, serverName)
	if err != nil {
		fail("discovery: %v", err)
		return rep
	}
	d := &Discovery{Step: fmt.Sprint(r.Step), Delegated: r.Delegated, Host: r.Host, TLSServerName: r.TLSServerName}
	if r.WellKnownErr != nil {
		d.WellKnownNote = r.WellKnownErr.Error()
	}
	for _, a := range r.Addrs {
		d.Addresses = append(d.Addresses, a.String())
	}
	rep.Discovery = d
	for _, a := range r.Addrs {
		rep.TLS = append(rep.TLS, tlsFacts(ctx, a.String(), r.TLSServerName))
	}
	verifiedTLS := false
	for _, t := range rep.TLS {
		verifiedTLS = verifiedTLS || t.Verified
	}
	if !verifiedTLS && !insecure {
		fail("tls: no address presented a certificate valid for %s", r.TLSServerName)
	}
	tlsConf := &tls.Config{InsecureSkipVerify: insecure}
	client := &http.Client{Transport: &serverdiscovery.Transport{Resolver: res, TLSConfig: tlsConf}, Timeout: 15 * time.Second}
	f := &keys.Fetcher{Client: client}
	sks, err := f.FetchKeys(ctx, serverName, nil, time.Time{})
	if err != nil {
		fail("keys: %v", err)
	} else if len(sks) > 0 {
		sk := sks[0]
		kr := &KeysReport{ValidUntil: time.UnixMilli(sk.ValidUntilTS).UTC(), VerifyKeys: map[string]string{}, Verified: true}
		for id, k := range sk.VerifyKeys {
			kr.VerifyKeys[id] = signing.EncodeBase64(k)
		}
		for id := range sk.OldVerifyKeys {
			kr.OldKeys = append(kr.OldKeys, id)
		}
		sort.Strings(kr.OldKeys)
		rep.Keys = kr
	}
	var v federation.Version
	// The version endpoint needs no authentication.
	req, _ := http.NewRequestWithContext(ctx, "GET", "matrix-federation://"+serverName+"/_matrix/federation/v1/version", nil)
	if resp, err := client.Do(req); err != nil {
		fail("version: %v", err)
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode != 200 || json.Unmarshal(body, &v) != nil {
			fail("version: status %d", resp.StatusCode)
		} else {
			rep.Version = &VersionInfo{Name: v.Server.Name, Version: v.Server.Version}
		}
	}
	rep.OK = len(rep.Errors) == 0
	return rep
}

func tlsFacts(ctx context.Context, addr, serverName string) TLSReport {
	t := TLSReport{Address: addr}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{ServerName: serverName, InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Error = err.Error()
		return t
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		t.Error = "no certificate"
		return t
	}
	c := certs[0]
	t.Subject, t.Issuer, t.DNSNames, t.NotAfter = c.Subject.String(), c.Issuer.String(), c.DNSNames, c.NotAfter.UTC()
	for _, ip := range c.IPAddresses {
		t.IPs = append(t.IPs, ip.String())
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	if _, err := c.Verify(x509.VerifyOptions{DNSName: serverName, Intermediates: inter}); err != nil {
		t.VerifyErr = err.Error()
	} else {
		t.Verified = true
	}
	return t
}

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "Server name      %s\n", r.ServerName)
	if d := r.Discovery; d != nil {
		fmt.Fprintf(w, "Discovery step   %s\n", d.Step)
		if d.Delegated != "" {
			fmt.Fprintf(w, "Delegated to     %s (.well-known)\n", d.Delegated)
		}
		if d.WellKnownNote != "" {
			fmt.Fprintf(w, ".well-known      not used: %s\n", d.WellKnownNote)
		}
		fmt.Fprintf(w, "Addresses        %s\n", strings.Join(d.Addresses, ", "))
		fmt.Fprintf(w, "Host header      %s\n", d.Host)
		fmt.Fprintf(w, "TLS server name  %s\n", d.TLSServerName)
	}
	for _, t := range r.TLS {
		if t.Error != "" {
			fmt.Fprintf(w, "TLS %-21s error: %s\n", t.Address, t.Error)
			continue
		}
		status := "valid"
		if !t.Verified {
			status = "NOT valid: " + t.VerifyErr
		}
		fmt.Fprintf(w, "TLS %-21s %s; subject %q, issuer %q, names %v %v, expires %s\n", t.Address, status, t.Subject, t.Issuer, t.DNSNames, t.IPs, t.NotAfter.Format(time.RFC3339))
	}
	if k := r.Keys; k != nil {
		ids := make([]string, 0, len(k.VerifyKeys))
		for id := range k.VerifyKeys {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			fmt.Fprintf(w, "Key              %s %s\n", id, k.VerifyKeys[id])
		}
		if len(k.OldKeys) > 0 {
			fmt.Fprintf(w, "Old keys         %s\n", strings.Join(k.OldKeys, ", "))
		}
		fmt.Fprintf(w, "Keys valid until %s; self-signatures verified\n", k.ValidUntil.Format(time.RFC3339))
	}
	if v := r.Version; v != nil {
		fmt.Fprintf(w, "Server software  %s %s\n", v.Name, v.Version)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR            %s\n", e)
	}
	if r.OK {
		fmt.Fprintln(w, "Result           OK")
	} else {
		fmt.Fprintln(w, "Result           FAILED")
	}
}

package discoverytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// CA is a certificate authority for tests: it issues server certificates
// for any DNS name or IP address, and its Pool is the root set that trusts
// them. Safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool

	mu     sync.Mutex
	serial int64
	issued map[string]*tls.Certificate
}

// NewCA makes a new CA valid from an hour ago for a day.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "discoverytest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("discoverytest: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{cert: cert, key: key, pool: pool, serial: 1, issued: map[string]*tls.Certificate{}}, nil
}

// Pool returns a root pool holding the CA.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// ClientTLS returns a TLS configuration that trusts the CA (and nothing
// else).
func (ca *CA) ClientTLS() *tls.Config { return &tls.Config{RootCAs: ca.pool} }

// Certificate issues a certificate valid for names (DNS names or IP
// addresses) and nothing else. Certificates are cached by their names.
func (ca *CA) Certificate(names ...string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("discoverytest: certificate for no name")
	}
	cacheKey := fmt.Sprint(names)
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.issued[cacheKey]; ok {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("discoverytest: certificate for %v: %w", names, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	ca.issued[cacheKey] = c
	return c, nil
}

// ServerTLS returns a TLS configuration for a server that presents, for
// each connection, a certificate for the name the client asked for (SNI),
// or for names when given: a server reachable under any name, or only
// under some.
func (ca *CA) ServerTLS(names ...string) *tls.Config {
	return &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(names) > 0 {
			return ca.Certificate(names...)
		}
		name := hello.ServerName
		if name == "" {
			name = "127.0.0.1"
		}
		return ca.Certificate(name)
	}}
}

// Package tlsconfig serves TLS and mutual TLS on tenantgate's listeners from
// certificate files that are reloaded while the server runs (cert-manager,
// Vault agent and Kubernetes secret mounts rewrite them in place). The key
// pair and the client CA pool are read, validated and published together
// with one atomic swap; every handshake reads the material in force, and a
// bad new file keeps the old material serving.
package tlsconfig

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MinVersion is the lowest TLS version the listeners accept.
const MinVersion = tls.VersionTLS12

// Files names the PEM files of one TLS configuration.
type Files struct {
	CertFile string // the server certificate chain, leaf first
	KeyFile  string // its private key
	// ClientCAFile, when set, turns on mutual TLS: every client must present
	// a certificate that chains to one of these CAs.
	ClientCAFile string
}

// Enabled reports whether any TLS file is set.
func (f Files) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.ClientCAFile != "" }

// Validate checks that the files make a configuration: a certificate and a
// key, both or neither, and a client CA only with them.
func (f Files) Validate() error {
	switch {
	case f.CertFile == "" && f.KeyFile == "" && f.ClientCAFile == "":
		return nil
	case f.CertFile == "" && f.KeyFile == "":
		return errors.New("tls: a client CA file needs a server certificate file and key file too")
	case f.CertFile == "" || f.KeyFile == "":
		return errors.New("tls: a certificate file and a key file are needed together")
	}
	return nil
}

// Paths lists the files set, for the file watcher.
func (f Files) Paths() []string {
	var out []string
	for _, p := range []string{f.CertFile, f.KeyFile, f.ClientCAFile} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Reloader holds the TLS material in force and rebuilds it from the files on
// Reload. It is safe for concurrent use.
type Reloader struct {
	files Files
	log   *slog.Logger
	mu    sync.Mutex // serialises Reload; handshakes never take it
	cur   atomic.Pointer[material]
}

// material is one validated, immutable load of the files.
type material struct {
	cert      tls.Certificate
	clientCAs *x509.CertPool // nil: no client certificates asked for
	caCount   int
	sum       [sha256.Size]byte // of the files' contents, to skip no-op reloads
}

// New loads the files; an unreadable or invalid file is an error naming it.
func New(files Files, log *slog.Logger) (*Reloader, error) {
	if err := files.Validate(); err != nil {
		return nil, err
	}
	if !files.Enabled() {
		return nil, errors.New("tls: no certificate files given")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{files: files, log: log}
	m, err := load(files, time.Now())
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.logLoaded("TLS certificate loaded", m)
	return r, nil
}

// Files returns the files this reloader reads.
func (r *Reloader) Files() Files { return r.files }

// Reload reads the files again and, when they are valid and changed,
// publishes them for the next handshakes. On error the material in force
// keeps serving; the error (naming the file) is logged and returned.
// Established connections keep the certificate they were made with.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := load(r.files, time.Now())
	if err != nil {
		r.log.Error("TLS reload failed; the previous certificate keeps serving", "error", err)
		return err
	}
	if m.sum == r.cur.Load().sum {
		return nil // a change elsewhere in the directory, or a rewrite of the same bytes
	}
	r.cur.Store(m)
	r.logLoaded("TLS certificate reloaded", m)
	return nil
}

// Certificate returns the server certificate in force (its Leaf is set).
func (r *Reloader) Certificate() *tls.Certificate {
	c := r.cur.Load().cert
	return &c
}

func (r *Reloader) logLoaded(msg string, m *material) {
	leaf := m.cert.Leaf
	r.log.Info(msg, "cert_file", r.files.CertFile, "subject", leaf.Subject.String(),
		"serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339),
		"mutual_tls", m.clientCAs != nil, "client_cas", m.caCount)
}

// ServerConfig returns a server tls.Config for one listener, offering
// nextProtos in ALPN ("h2" for gRPC; "h2", "http/1.1" for HTTP). Every
// handshake uses the material in force at that moment.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	l := &listener{r: r, nextProtos: nextProtos}
	return &tls.Config{
		MinVersion:         MinVersion,
		NextProtos:         nextProtos,
		GetConfigForClient: l.configForClient,
	}
}

// listener caches the handshake config built from one material, so a
// handshake costs no config building unless the material changed.
type listener struct {
	r          *Reloader
	nextProtos []string
	cached     atomic.Pointer[built]
}

type built struct {
	m   *material
	cfg *tls.Config
}

func (l *listener) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	m := l.r.cur.Load()
	if b := l.cached.Load(); b != nil && b.m == m {
		return b.cfg, nil
	}
	cfg := &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{m.cert},
		NextProtos:   l.nextProtos,
	}
	if m.clientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = m.clientCAs
	}
	// Fresh session ticket keys per material, so a rotation ends every
	// session issued before it. crypto/tls (Go 1.26) also re-verifies a
	// resumed client chain against the new ClientCAs; this does not depend
	// on it (TestResumptionAfterCARotation covers both).
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("tls: session ticket key: %w", err)
	}
	cfg.SetSessionTicketKeys([][32]byte{key})
	// Two handshakes racing here both build a config; either is correct.
	l.cached.Store(&built{m: m, cfg: cfg})
	return cfg, nil
}

// load reads and validates the files at time now.
func load(f Files, now time.Time) (*material, error) {
	certPEM, err := os.ReadFile(f.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: certificate %s: %w", f.CertFile, err)
		}
		cert.Leaf = leaf
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tls: certificate %s expired at %s", f.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("tls: certificate %s is not valid before %s", f.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	h := sha256.New()
	for _, b := range [][]byte{certPEM, {0}, keyPEM, {0}} {
		h.Write(b)
	}
	m := &material{cert: cert}
	if f.ClientCAFile != "" {
		caPEM, err := os.ReadFile(f.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		if m.clientCAs, m.caCount, err = parseCAs(caPEM); err != nil {
			return nil, fmt.Errorf("tls: client CA file %s: %w", f.ClientCAFile, err)
		}
		h.Write(caPEM)
	}
	h.Sum(m.sum[:0])
	return m, nil
}

// parseCAs parses every PEM block of a CA bundle. Unlike
// CertPool.AppendCertsFromPEM, which skips what it cannot parse, any bad
// block is an error: a half-written or wrong file must not silently shrink
// the set of trusted CAs.
func parseCAs(b []byte) (*x509.CertPool, int, error) {
	// pem.Decode skips text around blocks (openssl prints subjects there)
	// and also a block that does not decode, so count the blocks begun: a
	// half-written or corrupt block makes the counts differ.
	begun := bytes.Count(b, []byte("-----BEGIN "))
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, 0, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("PEM block %d: %w", n, err)
		}
		pool.AddCert(c)
	}
	if n != begun {
		return nil, 0, fmt.Errorf("%d of %d PEM blocks do not decode", begun-n, begun)
	}
	if n == 0 {
		return nil, 0, errors.New("no certificates")
	}
	return pool, n, nil
}

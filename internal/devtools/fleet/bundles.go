// Package fleet is development tooling for the fleet test (make fleet): it
// makes signed, tampered and unsigned revisions of the repository's bundle,
// serves them as OPA's bundle protocol describes (a long-polling bundle
// server), and runs many tenantgate processes against one server under
// gRPC load (Run). The product never imports it.
package fleet

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/bundlebuild"
)

// KeyID is the key id the test bundles are signed with; the sidecars'
// config names it in keys and bundles.NAME.signing.keyid.
const KeyID = "fleet_key"

// KeyPair is an RSA signing key and its public half, both PEM.
type KeyPair struct{ Private, Public []byte }

// NewKeyPair makes a 2048-bit RSA key pair.
func NewKeyPair() (KeyPair, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return KeyPair{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return KeyPair{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		Private: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		Public:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
	}, nil
}

// Maker builds revisions of one data and policy directory.
type Maker struct {
	base opabundle.Bundle
	key  KeyPair
}

// NewMaker assembles the bundle once (validating the data and policies).
func NewMaker(ctx context.Context, dataDir, policiesDir string, key KeyPair) (*Maker, error) {
	b, _, err := bundlebuild.Assemble(ctx, dataDir, policiesDir)
	if err != nil {
		return nil, err
	}
	return &Maker{base: b, key: key}, nil
}

// Signed is the bundle at revision rev, signed with the key.
func (m *Maker) Signed(rev string) ([]byte, error) { return m.build(rev, true) }

// Unsigned is the bundle at revision rev, without .signatures.json.
func (m *Maker) Unsigned(rev string) ([]byte, error) { return m.build(rev, false) }

func (m *Maker) build(rev string, sign bool) ([]byte, error) {
	b := m.base
	b.Manifest.Revision = rev
	if sign {
		if err := bundlebuild.Sign(&b, m.key.Private, "RS256", KeyID); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := bundlebuild.Write(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Tampered is a signed bundle at revision rev whose data.json was changed
// after signing (one byte of a name), as an attacker with write access to
// the bundle server could: the signature no longer covers it.
func (m *Maker) Tampered(rev string) ([]byte, error) {
	tgz, err := m.Signed(rev)
	if err != nil {
		return nil, err
	}
	return Rewrite(tgz, func(name string, content []byte) []byte {
		if name == "/data.json" || name == "data.json" {
			return bytes.Replace(content, []byte(`"name"`), []byte(`"nam3"`), 1)
		}
		return content
	})
}

// Rewrite rewrites a .tar.gz, file by file.
func Rewrite(tgz []byte, edit func(name string, content []byte) []byte) ([]byte, error) {
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	gw := gzip.NewWriter(&out)
	tw := tar.NewWriter(gw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		content = edit(h.Name, content)
		h.Size = int64(len(content))
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return out.Bytes(), nil
}

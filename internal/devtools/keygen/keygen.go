package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tenantgate/tenantgate/internal/bundlebuild"
)

// DevKeyBits is the size of the development RSA key: RS256 with 2048 bits
// is what OPA's own docs use, and it is quick to make.
const DevKeyBits = 2048

// EnsureKeyPair makes sure private holds a PEM private key (PKCS#8, mode
// 0600) and public the matching PEM public key (PKIX): with no private key,
// it generates an RSA pair; with one, it (re)writes the public key when it is
// missing or is not the private key's. It never replaces a private key. It
// reports whether it made a private key and whether it wrote the public one.
func EnsureKeyPair(private, public string) (madeKey, wrotePublic bool, err error) {
	var signer crypto.Signer
	b, err := os.ReadFile(private)
	switch {
	case errors.Is(err, os.ErrNotExist):
		k, err := rsa.GenerateKey(rand.Reader, DevKeyBits)
		if err != nil {
			return false, false, fmt.Errorf("keygen: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return false, false, fmt.Errorf("keygen: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(private), 0o700); err != nil {
			return false, false, fmt.Errorf("keygen: %w", err)
		}
		// O_EXCL: never overwrite a key another run made meanwhile.
		f, err := os.OpenFile(private, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return false, false, fmt.Errorf("keygen: %w", err)
		}
		err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return false, false, fmt.Errorf("keygen: %s: %w", private, err)
		}
		signer, madeKey = k, true
	case err != nil:
		return false, false, fmt.Errorf("keygen: %w", err)
	default:
		if signer, err = bundlebuild.ParsePrivateKey(b); err != nil {
			return false, false, fmt.Errorf("keygen: %s: %w", private, err)
		}
	}

	der, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return false, false, fmt.Errorf("keygen: %w", err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if old, err := os.ReadFile(public); err == nil && bytes.Equal(old, pub) {
		return madeKey, false, nil
	}
	if err := os.MkdirAll(filepath.Dir(public), 0o755); err != nil {
		return false, false, fmt.Errorf("keygen: %w", err)
	}
	if err := os.WriteFile(public, pub, 0o644); err != nil {
		return false, false, fmt.Errorf("keygen: %w", err)
	}
	return madeKey, true, nil
}

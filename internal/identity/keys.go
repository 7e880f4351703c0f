package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// minSecretLen is the shortest HS256 secret accepted: RFC 7518 section 3.2
// requires a key at least as long as the hash output (256 bits), and a short
// secret is guessable offline from any one token.
const minSecretLen = 32

// KeyFile is one key file, read and checked: an HS256 secret or a JWKS. It
// is immutable; NewVerifier builds a Verifier from one or two of them.
type KeyFile struct {
	path   string
	digest string    // SHA-256 of the file's bytes, hex
	secret []byte    // set for an HS256 secret file
	jwks   []jwksKey // set for a JWKS file
}

// Path is the file it was read from.
func (k *KeyFile) Path() string { return k.path }

// Digest is the SHA-256 of the file's content (hex), to tell whether a
// re-read found new keys. For a secret file it is a digest of the secret:
// compare it, never show it.
func (k *KeyFile) Digest() string { return k.digest }

// ReadSecretFile reads and checks an HS256 secret file.
func ReadSecretFile(path string) (*KeyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("HS256 secret file: %w", err)
	}
	secret, err := parseSecret(path, b)
	if err != nil {
		return nil, err
	}
	return &KeyFile{path: path, digest: digest(b), secret: secret}, nil
}

// ReadJWKSFile reads and checks a JWKS file (see parseJWKS).
func ReadJWKSFile(path string) (*KeyFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("JWKS file: %w", err)
	}
	keys, err := parseJWKS(path, b)
	if err != nil {
		return nil, err
	}
	return &KeyFile{path: path, digest: digest(b), jwks: keys}, nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// readSecret reads an HS256 secret file.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("HS256 secret file: %w", err)
	}
	return parseSecret(path, b)
}

// parseSecret checks the content b of the HS256 secret file path. Exactly
// one trailing "\n" or "\r\n" is dropped, because editors and `echo` add one;
// anything else, a second newline included, is part of the secret.
func parseSecret(path string, b []byte) ([]byte, error) {
	switch {
	case bytes.HasSuffix(b, []byte("\r\n")):
		b = b[:len(b)-2]
	case bytes.HasSuffix(b, []byte("\n")):
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("HS256 secret file %s: the secret is empty", path)
	}
	if len(b) < minSecretLen {
		return nil, fmt.Errorf("HS256 secret file %s: the secret is %d bytes, HS256 needs at least %d (RFC 7518 section 3.2)",
			path, len(b), minSecretLen)
	}
	return b, nil
}

// jwksKey is one verification key from a JWKS file, already bound to the
// single algorithm it may verify.
type jwksKey struct {
	kid string // "" when the JWK has none
	alg jwa.SignatureAlgorithm
	key any // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

// parseJWKS checks the content data of the JWKS file path (a JWKS, or one
// bare JWK). Every key must be usable: a key tenantgate cannot verify with
// is an operator mistake that should stop the load rather than be skipped
// silently.
func parseJWKS(path string, data []byte) ([]jwksKey, error) {
	// Two keys with one kid would make the kid lookup ambiguous.
	set, err := jwk.Parse(data, jwk.WithRejectDuplicateKID(true))
	if err != nil {
		return nil, fmt.Errorf("JWKS file %s: %w", path, err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("JWKS file %s: no keys", path)
	}
	keys := make([]jwksKey, 0, set.Len())
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		jk, err := fromJWK(k)
		if err != nil {
			return nil, fmt.Errorf("JWKS file %s: key #%d (kid %q): %w", path, i+1, kid, err)
		}
		jk.kid = kid
		keys = append(keys, jk)
	}
	return keys, nil
}

// fromJWK turns a JWK into a raw public key and the one algorithm it fits:
// RSA -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA. Binding the
// algorithm to the key here is what makes key confusion impossible later: a
// token's alg is only ever checked against this value.
func fromJWK(k jwk.Key) (jwksKey, error) {
	if use, ok := k.KeyUsage(); ok && use != string(jwk.ForSignature) {
		return jwksKey{}, fmt.Errorf(`"use" is %q, a verification key needs "sig"`, use)
	}
	if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return jwksKey{}, errors.New(`"key_ops" does not include "verify"`)
	}
	// A private JWK verifies with its public half; only that half is kept.
	pub, err := k.PublicKey()
	if err != nil {
		return jwksKey{}, fmt.Errorf("kty %q is not supported (want RSA, EC P-256 or OKP Ed25519): %w", k.KeyType(), err)
	}
	var raw any
	if err := jwk.Export(pub, &raw); err != nil {
		return jwksKey{}, fmt.Errorf("kty %q: %w", k.KeyType(), err)
	}
	var alg jwa.SignatureAlgorithm
	switch r := raw.(type) {
	case *rsa.PublicKey:
		alg = jwa.RS256()
	case *ecdsa.PublicKey:
		if r.Curve != elliptic.P256() {
			return jwksKey{}, fmt.Errorf("EC curve %s is not supported (want P-256 for ES256)", r.Curve.Params().Name)
		}
		alg = jwa.ES256()
	case ed25519.PublicKey:
		alg = jwa.EdDSA()
	default:
		return jwksKey{}, fmt.Errorf("kty %q is not supported (want RSA, EC P-256 or OKP Ed25519)", k.KeyType())
	}
	if declared, ok := k.Algorithm(); ok && declared.String() != alg.String() {
		return jwksKey{}, fmt.Errorf(`"alg" %q does not fit this %s key (want %q)`, declared, k.KeyType(), alg)
	}
	return jwksKey{alg: alg, key: raw}, nil
}

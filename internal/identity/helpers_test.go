package identity

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// testNow is the fixed "now" of the tests; tokens are minted relative to it.
var testNow = time.Unix(1_700_000_000, 0)

const (
	testSecret = "0123456789abcdef0123456789abcdef-test-secret"
	testSub    = "alice@contoso.example"
)

// testKeys are real keys, generated once per test binary (RSA is slow).
type testKeys struct {
	rsa, rsa2, rsaNoKid *rsa.PrivateKey
	ec, ec2             *ecdsa.PrivateKey
	ed, ed2             ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(tb testing.TB) *testKeys {
	tb.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keysVal.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.rsaNoKid, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		keysVal.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		keysVal.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		_, keysVal.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		_, keysVal.ed2, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
	return &keysVal
}

// jwkOf turns a raw key into a JWK with the given kid and alg ("" = unset).
func jwkOf(tb testing.TB, raw any, kid, alg string) jwk.Key {
	tb.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		tb.Fatalf("jwk.Import(%T): %v", raw, err)
	}
	if kid != "" {
		if err := k.Set(jwk.KeyIDKey, kid); err != nil {
			tb.Fatal(err)
		}
	}
	if alg != "" {
		if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
			tb.Fatal(err)
		}
	}
	return k
}

// writeJWKS writes keys as a JWKS file in a new temp dir and returns its path.
func writeJWKS(tb testing.TB, keys ...jwk.Key) string {
	tb.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	return writeFile(tb, "jwks.json", b)
}

func writeFile(tb testing.TB, name string, content []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// standardJWKS holds the public keys of keys(): rsa-1 (alg RS256), ec-1 (no
// alg), ed-1 (alg EdDSA) and an RSA key without kid.
func standardJWKS(tb testing.TB) string {
	k := keys(tb)
	return writeJWKS(tb,
		jwkOf(tb, &k.rsa.PublicKey, "rsa-1", "RS256"),
		jwkOf(tb, &k.ec.PublicKey, "ec-1", ""),
		jwkOf(tb, k.ed.Public(), "ed-1", "EdDSA"),
		jwkOf(tb, &k.rsaNoKid.PublicKey, "", ""),
	)
}

func load(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	v, err := Load(cfg)
	if err != nil {
		tb.Fatalf("Load(%+v): %v", cfg, err)
	}
	return v
}

// claims returns the standard valid claims (sub, exp = testNow+5m) with the
// given changes; a nil value removes the claim.
func claims(changes map[string]any) map[string]any {
	c := map[string]any{"sub": testSub, "exp": testNow.Add(5 * time.Minute).Unix()}
	maps.Copy(c, changes)
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	return c
}

// mint signs claims as a compact JWS with jwx (alg must fit key).
func mint(tb testing.TB, alg jwa.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	tb.Helper()
	return mintHeaders(tb, alg, key, map[string]any{"kid": kid}, c)
}

// mintHeaders is mint with extra protected headers (an empty kid is dropped).
func mintHeaders(tb testing.TB, alg jwa.SignatureAlgorithm, key any, headers map[string]any, c map[string]any) string {
	tb.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.TypeKey, "JWT"); err != nil {
		tb.Fatal(err)
	}
	for name, v := range headers {
		if name == "kid" && v == "" {
			continue
		}
		if err := h.Set(name, v); err != nil {
			tb.Fatal(err)
		}
	}
	signed, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		tb.Fatalf("jws.Sign(%s, %T): %v", alg, key, err)
	}
	return string(signed)
}

// raw builds a compact token by hand, for headers jwx refuses to sign
// (alg none) and for malformed shapes.
func raw(tb testing.TB, header, c map[string]any, sig string) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + sig
}

func mustECKey(tb testing.TB, curve string) *ecdsa.PublicKey {
	tb.Helper()
	c := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[curve]
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return &k.PublicKey
}

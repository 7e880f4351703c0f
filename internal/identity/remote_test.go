package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// testRemote is the RemoteConfig of the tests: refreshes every 1-2 s, one
// forced refresh per hour (so a test sees exactly which path a key came
// through), and a generous wait for it (-race on a loaded machine).
func testRemote(p *idp) RemoteConfig {
	return RemoteConfig{
		Issuer:     p.issuer,
		CAFile:     p.caFile,
		MinRefresh: time.Second,
		MaxRefresh: 2 * time.Second,
		KidRefresh: time.Hour,
		KidWait:    5 * time.Second,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func startRemote(t *testing.T, cfg RemoteConfig) *RemoteKeys {
	t.Helper()
	r, err := StartRemote(context.Background(), cfg, 20*time.Second)
	if err != nil {
		t.Fatalf("StartRemote: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func remoteVerifier(t *testing.T, r *RemoteKeys, issuer string) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{Remote: r, Issuer: issuer, Audience: "portal", Leeway: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// idpToken mints a token of the test IdP: iss, aud portal, the standard sub.
func idpToken(t *testing.T, p *idp, alg jwa.SignatureAlgorithm, key any, kid string) string {
	return "Bearer " + mint(t, alg, key, kid, claims(map[string]any{"iss": p.issuer, "aud": "portal"}))
}

// eventually polls check every 20 ms until it returns nil, and returns how
// long that took; it fails the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s: %v", what, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func accepted(v *Verifier, authz string) func() error {
	return func() error {
		sub, err := v.Subject(authz, testNow)
		if err == nil && sub != testSub {
			err = fmt.Errorf("sub %q, want %q", sub, testSub)
		}
		return err
	}
}

func refused(v *Verifier, authz string, want error) func() error {
	return func() error {
		_, err := v.Subject(authz, testNow)
		if !errors.Is(err, want) {
			return fmt.Errorf("got %v, want %v", err, want)
		}
		return nil
	}
}

// TestRemoteRotationThroughNginx is the rotation timeline against a real
// provider: nginx over TLS with a test CA, discovery then JWKS, keys
// rotated by replacing the JWKS file, Cache-Control max-age=1.
func TestRemoteRotationThroughNginx(t *testing.T) {
	k := keys(t)
	old := jwkOf(t, &k.rsa.PublicKey, "rsa-old", "RS256")
	next := jwkOf(t, &k.rsa2.PublicKey, "rsa-next", "RS256")
	ec := jwkOf(t, &k.ec.PublicKey, "ec-next", "ES256")
	p := startIDP(t, 1, old)
	r := startRemote(t, testRemote(p))
	if r.URL() != p.jwksURL {
		t.Fatalf("discovered JWKS URL %q, want %q", r.URL(), p.jwksURL)
	}
	v := remoteVerifier(t, r, r.Issuer())
	tokOld := idpToken(t, p, jwa.RS256(), k.rsa, "rsa-old")
	tokNext := idpToken(t, p, jwa.RS256(), k.rsa2, "rsa-next")
	tokEC := idpToken(t, p, jwa.ES256(), k.ec, "ec-next")
	if err := accepted(v, tokOld)(); err != nil {
		t.Fatalf("token of the published key: %v", err)
	}

	// 1. A new key, published: its first token names an unknown kid,
	// which forces a refresh, and is accepted at once.
	p.publish(old, next)
	start := time.Now()
	if err := accepted(v, tokNext)(); err != nil {
		t.Fatalf("token of a newly published key, through the unknown-kid refresh: %v", err)
	}
	t.Logf("new key published -> first token accepted (unknown-kid refresh): %s", time.Since(start).Round(time.Millisecond))

	// 2. Another new key while forced refreshes are rate-limited: refused
	// without waiting, then accepted after the scheduled refresh.
	p.publish(old, next, ec)
	start = time.Now()
	if err := refused(v, tokEC, errUnknownKid)(); err != nil {
		t.Fatalf("a kid within the forced-refresh rate limit: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Logf("note: the rate-limited refusal took %s", d)
	}
	eventually(t, 20*time.Second, "new ES256 key through the scheduled refresh", accepted(v, tokEC))
	t.Logf("new key published -> first token accepted (scheduled refresh, max-age=1): %s", time.Since(start).Round(time.Millisecond))

	// 3. A key removed: its token, accepted (and cached) before, is
	// refused after the next refresh.
	if err := accepted(v, tokOld)(); err != nil {
		t.Fatal(err)
	}
	p.publish(next, ec)
	start = time.Now()
	eventually(t, 20*time.Second, "token of a removed key refused", refused(v, tokOld, errUnknownKid))
	t.Logf("key removed -> first token refused: %s", time.Since(start).Round(time.Millisecond))
	if st := r.Status(); !st.OK || !slices.Equal(st.KeyIDs, []string{"rsa-next", "ec-next"}) {
		t.Fatalf("status after the removal: %+v", st)
	}

	// 4. The provider returns garbage: the last good key set keeps
	// serving, and the status says why it is not current.
	before := r.Status()
	p.writeFile(idpCertPath, []byte("<html>502 Bad Gateway</html>"))
	eventually(t, 20*time.Second, "a failed fetch shown", func() error {
		if st := r.Status(); st.OK || st.Failures == before.Failures {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	for _, tok := range []string{tokNext, tokEC} {
		if err := accepted(v, tok)(); err != nil {
			t.Fatalf("with the provider returning garbage: %v", err)
		}
	}
	st := r.Status()
	if !strings.Contains(st.LastError, r.URL()) || st.LastErrorAt.IsZero() || !slices.Equal(st.KeyIDs, before.KeyIDs) || st.Revision != before.Revision {
		t.Fatalf("status with garbage: %+v", st)
	}
	t.Logf("garbage: %s", st.LastError)

	// 5. The provider is down: nothing changes for the keys in force; a
	// token with an unknown kid is refused (the rate limit holds).
	p.stop()
	downAt := time.Now()
	failures := r.Status().Failures
	eventually(t, 20*time.Second, "a failed fetch with the provider down", func() error {
		if st := r.Status(); st.Failures == failures || !strings.Contains(st.LastError, "connect") {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	for _, tok := range []string{tokNext, tokEC} {
		if err := accepted(v, tok)(); err != nil {
			t.Fatalf("with the provider down: %v", err)
		}
	}
	if err := refused(v, tokOld, errUnknownKid)(); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	t.Logf("provider down for %s: %d failed fetches, keys in force %v, last error %q",
		time.Since(downAt).Round(time.Millisecond), st.Failures-failures, st.KeyIDs, st.LastError)
	if st.OK || st.LastSuccessAt.After(downAt) || !slices.Equal(st.KeyIDs, []string{"rsa-next", "ec-next"}) {
		t.Fatalf("status with the provider down: %+v", st)
	}
}

// TestRemoteAlgorithms: RS256, ES256 and EdDSA keys from a URL (no
// discovery), each bound to its one algorithm; a provider's encryption key
// and a key of another algorithm are skipped and listed, not fatal.
func TestRemoteAlgorithms(t *testing.T) {
	k := keys(t)
	enc := jwkOf(t, &k.rsaNoKid.PublicKey, "enc-1", "RSA-OAEP")
	if err := enc.Set(jwk.KeyUsageKey, "enc"); err != nil {
		t.Fatal(err)
	}
	p := startIDP(t, 60,
		jwkOf(t, &k.rsa.PublicKey, "rsa-1", "RS256"),
		jwkOf(t, &k.ec.PublicKey, "ec-1", ""),
		jwkOf(t, k.ed.Public(), "ed-1", "EdDSA"),
		enc,
		jwkOf(t, &k.rsa2.PublicKey, "ps-1", "PS256"),
	)
	cfg := testRemote(p)
	cfg.Issuer, cfg.JWKSURL = "", p.jwksURL
	r := startRemote(t, cfg)
	v := remoteVerifier(t, r, p.issuer)

	pkix, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	tests := []struct {
		name  string
		authz string
		want  error
	}{
		{"RS256", idpToken(t, p, jwa.RS256(), k.rsa, "rsa-1"), nil},
		{"ES256", idpToken(t, p, jwa.ES256(), k.ec, "ec-1"), nil},
		{"EdDSA", idpToken(t, p, jwa.EdDSA(), k.ed, "ed-1"), nil},
		{"RS256 without kid", idpToken(t, p, jwa.RS256(), k.rsa, ""), nil},
		{"ES256 naming the RSA key", idpToken(t, p, jwa.ES256(), k.ec, "rsa-1"), errAlg},
		{"RS384 with the RSA key", idpToken(t, p, jwa.RS384(), k.rsa, "rsa-1"), errAlg},
		{"HS256 keyed with the RSA public key", idpToken(t, p, jwa.HS256(), pubPEM, "rsa-1"), errAlg},
		{"the encryption key's kid", idpToken(t, p, jwa.RS256(), k.rsaNoKid, "enc-1"), errUnknownKid},
		{"a PS256 key's kid", idpToken(t, p, jwa.RS256(), k.rsa2, "ps-1"), errUnknownKid},
		{"signed by another RSA key", idpToken(t, p, jwa.RS256(), k.rsa2, "rsa-1"), errSignature},
		{"wrong issuer", "Bearer " + mint(t, jwa.RS256(), k.rsa, "rsa-1", claims(map[string]any{"iss": "https://evil.example", "aud": "portal"})), errIssuer},
		{"wrong audience", "Bearer " + mint(t, jwa.RS256(), k.rsa, "rsa-1", claims(map[string]any{"iss": p.issuer, "aud": "other"})), errAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := v.Subject(tt.authz, testNow)
			switch {
			case tt.want == nil && (err != nil || sub != testSub):
				t.Fatalf("got %q, %v; want accepted", sub, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %q, %v; want %v", sub, err, tt.want)
			}
		})
	}
	st := r.Status()
	if !slices.Equal(st.KeyIDs, []string{"rsa-1", "ec-1", "ed-1"}) || len(st.Skipped) != 2 ||
		!strings.Contains(st.Skipped[0], `"enc-1"`) || !strings.Contains(st.Skipped[1], `"ps-1"`) {
		t.Fatalf("status: keys %v, skipped %q", st.KeyIDs, st.Skipped)
	}
}

// TestRemoteUnknownKidFlood: tokens naming random kids, many at once, cost
// the provider one fetch per KidRefresh, not one each.
func TestRemoteUnknownKidFlood(t *testing.T) {
	k := keys(t)
	p := startIDP(t, 60, jwkOf(t, &k.rsa.PublicKey, "rsa-1", "RS256"))
	cfg := testRemote(p)
	cfg.KidWait = 50 * time.Millisecond
	cfg.MinRefresh, cfg.MaxRefresh = time.Hour, time.Hour // no scheduled refresh meanwhile
	r := startRemote(t, cfg)
	v := remoteVerifier(t, r, p.issuer)
	var toks [8][50]string
	for i := range toks {
		for j := range toks[i] {
			toks[i][j] = idpToken(t, p, jwa.ES256(), k.ec, fmt.Sprintf("random-%d-%d", i, j))
		}
	}
	before := p.jwksFetches()
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			for _, tok := range toks[i] {
				if _, err := v.Subject(tok, testNow); !errors.Is(err, errUnknownKid) {
					t.Errorf("random kid: %v", err)
				}
			}
		})
	}
	wg.Wait()
	// nginx logs a request when it is done: give the forced one time to land.
	time.Sleep(200 * time.Millisecond)
	if n := p.jwksFetches() - before; n > 1 {
		t.Fatalf("400 tokens with random kids made %d JWKS fetches, want at most 1", n)
	}
	if st := r.Status(); st.KidRefreshes != 1 {
		t.Fatalf("forced refreshes %d, want 1", st.KidRefreshes)
	}
	if err := accepted(v, idpToken(t, p, jwa.RS256(), k.rsa, "rsa-1"))(); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteStartErrors: start-up refuses what cannot work, and says why.
func TestRemoteStartErrors(t *testing.T) {
	k := keys(t)
	p := startIDP(t, 60, jwkOf(t, &k.rsa.PublicKey, "rsa-1", "RS256"))
	down := startIDP(t, 60, jwkOf(t, &k.rsa.PublicKey, "rsa-1", "RS256"))
	down.stop()
	garbage := startIDP(t, 60)
	garbage.writeFile(idpCertPath, []byte(`{"keys": "no"}`))
	tests := []struct {
		name string
		mod  func(*RemoteConfig)
		want string
	}{
		{"issuer differs from the document's", func(c *RemoteConfig) { c.Issuer += "/" }, "section 4.3"},
		{"no CA file: the test CA is unknown", func(c *RemoteConfig) { c.CAFile = "" }, "certificate"},
		{"provider down", func(c *RemoteConfig) { c.Issuer, c.CAFile = "", down.caFile; c.JWKSURL = down.jwksURL }, "no key set within"},
		{"garbage JWKS", func(c *RemoteConfig) { c.Issuer, c.CAFile = "", garbage.caFile; c.JWKSURL = garbage.jwksURL }, "no key set within"},
		{"plain http to another host", func(c *RemoteConfig) { c.Issuer = "http://keycloak.example/realms/portal" }, "--jwks-insecure-http"},
		{"both URL and issuer", func(c *RemoteConfig) { c.JWKSURL = p.jwksURL }, "one of them"},
		{"CA file without a certificate", func(c *RemoteConfig) { c.CAFile = writeFile(t, "ca.pem", []byte("no")) }, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testRemote(p)
			tt.mod(&cfg)
			r, err := StartRemote(context.Background(), cfg, 3*time.Second)
			if err == nil {
				r.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://keycloak.example/realms/portal", false, true},
		{"http://127.0.0.1:8080/certs", false, true},
		{"http://[::1]:8080/certs", false, true},
		{"http://localhost:8080/certs", false, true},
		{"http://keycloak.example/certs", false, false},
		{"http://keycloak.example/certs", true, true},
		{"ftp://keycloak.example/certs", true, false},
		{"https://user:pw@keycloak.example/certs", false, false},
		{"/certs", false, false},
	}
	for _, tt := range tests {
		if err := checkURL("JWKS URL", tt.url, tt.insecure); (err == nil) != tt.ok {
			t.Errorf("checkURL(%q, insecure %v) = %v, want ok %v", tt.url, tt.insecure, err, tt.ok)
		}
	}
}

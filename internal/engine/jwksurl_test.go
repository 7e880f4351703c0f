package engine

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

// jwksServer serves the JWKS in body, or a 500 while body is empty.
type jwksServer struct {
	*httptest.Server
	body atomic.Pointer[[]byte]
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if b := s.body.Load(); b != nil && len(*b) > 0 {
			w.Header().Set("Cache-Control", "max-age=1")
			_, _ = w.Write(*b)
			return
		}
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) publish(t *testing.T, keys map[string]ed25519.PrivateKey) {
	set := jwk.NewSet()
	for kid, k := range keys {
		pk, err := jwk.Import(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		_ = pk.Set(jwk.KeyIDKey, kid)
		_ = set.AddKey(pk)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

func edToken(t *testing.T, key ed25519.PrivateKey, kid, sub string) string {
	payload, _ := json.Marshal(map[string]any{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, kid)
	tok, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA(), key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + string(tok)
}

// TestSourcesJWKSURLIndependent: a URL key set and the tenant data never
// wait on each other. With the provider failing, a data edit (a user
// disabled) is in force at the next reload; with the data broken, a key
// the provider published is in force at once, without a snapshot rebuild.
// /v1/status shows the URL key set as its own source.
func TestSourcesJWKSURLIndependent(t *testing.T) {
	ctx := context.Background()
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	srv := newJWKSServer(t)
	srv.publish(t, map[string]ed25519.PrivateKey{"k1": k1})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	remote, err := identity.StartRemote(ctx, identity.RemoteConfig{
		JWKSURL: srv.URL, MinRefresh: time.Second, MaxRefresh: time.Second, KidRefresh: time.Millisecond,
		KidWait: 5 * time.Second, Logger: quiet,
	}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remote.Close)
	data, pols := testdir.Copy(t, "../../data"), testdir.Copy(t, "../../policies")
	e := New(Options{
		Source:   Dirs{Data: data, Policies: pols},
		Identity: &identity.Config{Remote: remote, Leeway: time.Minute},
		Logger:   quiet,
		Timeout:  time.Second,
	})
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(tok string) string {
		return e.Check(ctx, &Request{Method: "GET", Path: "/api/v1/customers/contoso/vbr-jobs", Authorization: tok}).Reason
	}
	bob := edToken(t, k1, "k1", "bob@contoso.example")
	if r := check(bob); r != "allowed" {
		t.Fatalf("bob with k1: %s", r)
	}

	// The provider fails; the data changes: the reload does not wait for
	// or fail on the keys, and the change is in force.
	srv.body.Store(nil)
	waitFor(t, "the failed fetch in /v1/status", func() bool {
		st := e.Status().Sources[SourceJWKSURL]
		return !st.OK && strings.Contains(st.LastError, "500")
	})
	users := filepath.Join(data, "users.yaml")
	orig, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	write(t, users, strings.Replace(string(orig), "    locations: [hq]              # limited", "    disabled: true\n    locations: [hq]              # limited", 1))
	if err := e.Reload(ctx); err != nil {
		t.Fatalf("data reload with the provider failing: %v", err)
	}
	if r := check(bob); r != "user_disabled" {
		t.Fatalf("bob disabled while the provider fails: %s", r)
	}
	st := e.Status()
	if !st.Sources[SourceData].OK || st.Sources[SourceJWKSURL].OK || !st.Ready {
		t.Fatalf("status: %+v", st.Sources)
	}

	// The data breaks; the provider rotates to k2: a k2 token is accepted
	// at once (its unknown kid forces a refresh), on the same snapshot.
	write(t, users, "users: [not, a, map]\n")
	if err := e.Reload(ctx); err == nil {
		t.Fatal("broken data reloaded")
	}
	snap := e.Snapshot()
	srv.publish(t, map[string]ed25519.PrivateKey{"k2": k2})
	alice := edToken(t, k2, "k2", "alice@contoso.example")
	if r := check(alice); r != "allowed" {
		t.Fatalf("alice with the new key while the data is broken: %s", r)
	}
	if e.Snapshot() != snap {
		t.Fatal("a key rotation rebuilt the snapshot")
	}
	waitFor(t, "k1 refused after the rotation", func() bool {
		return check(edToken(t, k1, "k1", "alice@contoso.example")) == "unauthenticated"
	})
	st = e.Status()
	u := st.Sources[SourceJWKSURL]
	if !u.OK || u.URL != srv.URL || len(u.KeyIDs) != 1 || u.KeyIDs[0] != "k2" || u.LastFetchAt.IsZero() || st.Sources[SourceData].OK {
		t.Fatalf("status: %+v", st.Sources)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

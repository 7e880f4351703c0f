package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// TestServeJWKSFlagErrors: the URL key set's flags name the fix.
func TestServeJWKSFlagErrors(t *testing.T) {
	serve := []string{"serve", "--data", "../../data", "--policies", "../../policies"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"url and issuer", []string{"--jwks-url", "https://a.example/certs", "--oidc-issuer", "https://a.example"}, "give one"},
		{"CA file alone", []string{"--jwt-hs256-secret-file", "s", "--jwks-ca-file", "ca.pem"}, "--jwks-ca-file needs --jwks-url or --oidc-issuer"},
		{"skip check without issuer", []string{"--jwks-url", "https://a.example/certs", "--oidc-skip-issuer-check"}, "--oidc-skip-issuer-check needs --oidc-issuer"},
		{"plain http elsewhere", []string{"--oidc-issuer", "http://keycloak.example/realms/portal"}, "--jwks-insecure-http"},
		{"refresh bounds", []string{"--jwks-url", "https://a.example/certs", "--jwks-refresh-min", "10m", "--jwks-refresh-max", "1m"}, "max not below min"},
		{"provider unreachable", []string{"--jwks-url", "http://127.0.0.1:1/certs", "--jwks-start-timeout", "300ms"}, "no key set within 300ms"},
		{"no key at all", nil, "--oidc-issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := runCLI(t, append(append([]string{}, serve...), tt.args...)...)
			if code != 1 || !strings.Contains(errs, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, errs, tt.want)
			}
		})
	}
}

// TestServeOIDCIssuer: serve with --oidc-issuer finds the JWKS through the
// discovery document, checks iss against the issuer, and shows the key set
// in /v1/status and /metrics.
func TestServeOIDCIssuer(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Set(jwk.KeyIDKey, "ed-1")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/realms/portal/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/protocol/openid-connect/certs"})
	})
	mux.HandleFunc("/realms/portal/protocol/openid-connect/certs", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	})
	idp := httptest.NewServer(mux) // loopback: plain http is allowed
	defer idp.Close()
	issuer = idp.URL + "/realms/portal"

	dir := t.TempDir()
	sock := filepath.Join(dir, "http.sock")
	args := []string{"serve", "--data", "../../data", "--policies", "../../policies", "--shutdown-delay", "1ms",
		"--oidc-issuer", issuer, "--jwt-audience", "portal",
		"--grpc-addr", "unix://" + filepath.Join(dir, "grpc.sock"), "--http-addr", "unix://" + sock}
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(args, &stdout, &stderr) }()
	client := unixClient(sock)
	if exited, err := waitServing(t, client, done); exited {
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	}
	decide := func(iss string) int {
		t.Helper()
		payload, _ := json.Marshal(map[string]any{"sub": "alice@contoso.example", "iss": iss, "aud": "portal", "exp": time.Now().Add(time.Hour).Unix()})
		h := jws.NewHeaders()
		_ = h.Set(jws.KeyIDKey, "ed-1")
		tok, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA(), key, jws.WithProtectedHeaders(h)))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", "http://tenantgate/authz", nil)
		req.Header.Set("Authorization", "Bearer "+string(tok))
		req.Header.Set("X-Forwarded-Method", "GET")
		req.Header.Set("X-Forwarded-Uri", "/api/v1/customers/contoso/users")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := decide(issuer); got != http.StatusOK {
		t.Errorf("token of the issuer: %d, want 200", got)
	}
	if got := decide("https://other.example/realms/portal"); got != http.StatusUnauthorized {
		t.Errorf("token of another issuer: %d, want 401", got)
	}
	get := func(path string) string {
		resp, err := client.Get("http://tenantgate" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var status struct {
		Sources map[string]struct {
			OK     bool     `json:"ok"`
			URL    string   `json:"url"`
			Issuer string   `json:"issuer"`
			KeyIDs []string `json:"key_ids"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(get("/v1/status")), &status); err != nil {
		t.Fatal(err)
	}
	if u := status.Sources["jwks_url"]; !u.OK || u.Issuer != issuer || u.URL != issuer+"/protocol/openid-connect/certs" || len(u.KeyIDs) != 1 || u.KeyIDs[0] != "ed-1" {
		t.Errorf("/v1/status jwks_url: %+v", u)
	}
	m := get("/metrics")
	for _, want := range []string{"tenantgate_jwks_keys 1", `tenantgate_source_ok{source="jwks_url"} 1`, `tenantgate_jwks_fetches_total{result="success"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

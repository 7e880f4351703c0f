package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testkit/tlstest"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
)

// TestAdminListener: with mutual TLS on the decision listeners, the admin
// address still answers health, metrics and status over plain HTTP (what a
// kubelet probe or a Prometheus scraper can do), and answers no decision.
func TestAdminListener(t *testing.T) {
	serverCA, clientCA := tlstest.NewCA(t, "server CA"), tlstest.NewCA(t, "client CA")
	f := tlstest.Write(t, t.TempDir(), serverCA.Server(t, "tenantgate"), clientCA)
	r, err := tlsconfig.New(tlsconfig.Files{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := launch(t, serveOpts{tls: r, config: func(c *Config) {
		c.AdminAddr = "127.0.0.1:0"
		c.ShutdownDelay = 3 * time.Second
	}})
	if h.adminAddr == "" {
		t.Fatal("Ready gave no admin address")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(t *testing.T, base, path string, hdr map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	admin := "http://" + h.adminAddr
	bearer := map[string]string{"Authorization": "Bearer " + h.token(alice)}
	tests := []struct {
		path     string
		hdr      map[string]string
		want     int
		contains string
	}{
		{path: "/healthz", want: 200, contains: "ok"},
		{path: "/readyz", want: 200, contains: "ready"},
		{path: "/metrics", want: 200, contains: "tenantgate_"},
		{path: "/v1/status", want: 200, contains: `"revision"`},
		// No decision is ever answered here: not the path form, not the
		// forwarded form, whatever the token.
		{path: "/authz" + allowedPath, hdr: bearer, want: 404},
		{path: "/authz", hdr: map[string]string{"Authorization": bearer["Authorization"], "X-Forwarded-Method": "GET", "X-Forwarded-Uri": allowedPath}, want: 404},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			code, body := get(t, admin, tc.path, tc.hdr)
			if code != tc.want || !strings.Contains(body, tc.contains) {
				t.Errorf("GET %s on the admin address: %d %.80q, want %d containing %q", tc.path, code, body, tc.want, tc.contains)
			}
		})
	}
	t.Run("decision listener still needs a client certificate", func(t *testing.T) {
		if code, _ := get(t, "http://"+h.httpAddr, "/healthz", nil); code != http.StatusBadRequest {
			t.Errorf("plaintext /healthz on the mTLS HTTP address: %d, want Go's 400 for plain HTTP to a TLS port", code)
		}
	})
	t.Run("readyz 503 while stopping", func(t *testing.T) {
		stopped := make(chan struct{})
		go func() { h.stop(); close(stopped) }()
		defer func() { <-stopped }()
		// During the shutdown delay the admin address still answers, with
		// /readyz 503 so the kubelet takes the pod out of its Service.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := client.Get(admin + "/readyz")
			if err != nil {
				t.Fatalf("the admin address closed before /readyz said 503: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				return
			}
		}
		t.Error("/readyz on the admin address never said 503 while stopping")
	})
}

package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantgate/tenantgate/internal/decisionlog"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
	"github.com/tenantgate/tenantgate/internal/testkit/tlstest"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
)

const (
	allowedPath = "/api/v1/customers/contoso/users"   // alice may read it
	deniedPath  = "/api/v1/customers/northwind/users" // outside alice's tenant
	alice       = "alice@contoso.example"
)

// grpcDial returns an Authorization client for target with creds.
func grpcDial(t *testing.T, target string, creds credentials.TransportCredentials) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// grpcAsk sends one Check; an error is a transport failure (a refused
// handshake), never a decision.
func grpcAsk(h *harness, client authv3.AuthorizationClient, method, path string) (*authv3.CheckResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path,
			Headers: map[string]string{"authorization": "Bearer " + h.token(alice), ":authority": "portal.example"},
		}},
	}})
}

// httpAsk sends one HTTP-mode check (<METHOD> /authz/<path>) to base.
func httpAsk(h *harness, client *http.Client, base, method, path string) (*http.Response, error) {
	req, err := http.NewRequest(method, base+"/authz"+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token(alice))
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func TestTLSListeners(t *testing.T) {
	serverCA := tlstest.NewCA(t, "server CA")
	clientCA := tlstest.NewCA(t, "client CA")
	otherCA := tlstest.NewCA(t, "other CA")
	serverPair := serverCA.Server(t, "tenantgate")
	envoy := clientCA.Client(t, "envoy")
	stranger := otherCA.Client(t, "stranger")

	servers := map[bool]*harness{} // by mutual
	for _, mutual := range []bool{false, true} {
		var ca *tlstest.CA
		if mutual {
			ca = clientCA
		}
		f := tlstest.Write(t, t.TempDir(), serverPair, ca)
		r, err := tlsconfig.New(tlsconfig.Files{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.CA}, nil)
		if err != nil {
			t.Fatal(err)
		}
		servers[mutual] = launch(t, serveOpts{tls: r})
	}

	tests := []struct {
		name       string
		mutual     bool
		plaintext  bool // the client does not speak TLS at all
		clientCert *tlstest.Pair
		wantOK     bool
	}{
		{name: "tls", wantOK: true},
		{name: "tls plaintext client refused", plaintext: true},
		{name: "mtls good client cert", mutual: true, clientCert: envoy, wantOK: true},
		{name: "mtls no client cert refused", mutual: true},
		{name: "mtls client cert from another CA refused", mutual: true, clientCert: stranger},
	}
	for _, tc := range tests {
		h := servers[tc.mutual]
		cfg := &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost"}
		if tc.clientCert != nil {
			cfg.Certificates = []tls.Certificate{tc.clientCert.TLS}
		}
		t.Run("grpc/"+tc.name, func(t *testing.T) {
			creds := credentials.NewTLS(cfg)
			if tc.plaintext {
				creds = insecure.NewCredentials()
			}
			resp, err := grpcAsk(h, grpcDial(t, h.grpcAddr, creds), "GET", allowedPath)
			if !tc.wantOK {
				if err == nil {
					t.Fatalf("the check was answered: %v", resp)
				}
				return
			}
			if err != nil || resp.GetOkResponse() == nil {
				t.Fatalf("want an allow, got %v, %v", resp, err)
			}
		})
		t.Run("http/"+tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: true}
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			scheme := "https://"
			if tc.plaintext {
				client.Transport, scheme = &http.Transport{}, "http://"
			}
			resp, err := httpAsk(h, client, scheme+h.httpAddr, "GET", allowedPath)
			if !tc.wantOK {
				// Go's server answers a plaintext request to a TLS port with a
				// 400: refused all the same, never a decision.
				if err == nil && resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("the check was answered: %d", resp.StatusCode)
				}
				return
			}
			if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Tenantgate-User") != alice {
				t.Fatalf("want an allow, got %v, %v", resp, err)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2 offered over TLS", resp.Proto)
			}
		})
	}
}

// TestTLSRotation rewrites the certificate files under a running server:
// the next handshakes present the new certificate, and a broken file keeps
// the last good one serving, on both listeners.
func TestTLSRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "CA")
	f := tlstest.Write(t, t.TempDir(), ca.Server(t, "first"), nil)
	var logs syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r, err := tlsconfig.New(tlsconfig.Files{CertFile: f.Cert, KeyFile: f.Key}, log)
	if err != nil {
		t.Fatal(err)
	}
	h := launch(t, serveOpts{tls: r, logger: log})
	presented := func(addr, proto string) string {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
			&tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{proto}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	listeners := map[string][2]string{"grpc": {h.grpcAddr, "h2"}, "http": {h.httpAddr, "http/1.1"}}

	second := ca.Server(t, "second")
	tlstest.WriteFile(t, f.Key, second.KeyPEM)
	tlstest.WriteFile(t, f.Cert, second.CertPEM)
	for name, l := range listeners {
		eventually(t, name+" presents the rotated certificate", 20*time.Second, func() bool {
			return presented(l[0], l[1]) == "second"
		})
	}

	// (Writing the key before the certificate may have logged a mismatch:
	// only what is logged from here on counts.)
	mark := len(logs.String())
	tlstest.WriteFile(t, f.Cert, []byte("-----BEGIN CERTIFICATE-----\ntruncated"))
	eventually(t, "the broken file is logged", 20*time.Second, func() bool {
		l := logs.String()[mark:]
		return strings.Contains(l, "TLS reload failed") && strings.Contains(l, f.Cert)
	})
	for name, l := range listeners {
		if got := presented(l[0], l[1]); got != "second" {
			t.Errorf("%s presents %q after a broken file, want the last good %q", name, got, "second")
		}
	}
	// And it still decides.
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if resp, err := grpcAsk(h, grpcDial(t, h.grpcAddr, credentials.NewTLS(cfg)), "GET", allowedPath); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("gRPC check after a broken file: %v, %v", resp, err)
	}
}

// unixClient is an HTTP client whose every connection goes to the socket.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// staleSocket leaves a socket file with nobody listening, as a crash does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	lis, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	lis.SetUnlinkOnClose(false)
	lis.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the stale socket is gone: %v", err)
	}
}

func TestUnixSockets(t *testing.T) {
	dir := t.TempDir()
	grpcSock, httpSock := filepath.Join(dir, "grpc.sock"), filepath.Join(dir, "http.sock")
	staleSocket(t, grpcSock) // an earlier run crashed: replaced
	h := launch(t, serveOpts{grpcAddr: "unix://" + grpcSock, httpAddr: "unix://" + httpSock})

	for _, sock := range []string{grpcSock, httpSock} {
		st, err := os.Stat(sock)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != SocketMode {
			t.Errorf("%s: mode %v, want a socket with %v", sock, st.Mode(), os.FileMode(SocketMode))
		}
	}

	client := grpcDial(t, "unix://"+grpcSock, insecure.NewCredentials())
	httpClient := unixClient(httpSock)
	tests := []struct {
		name   string
		path   string
		status int
		reason string
	}{
		{"allow", allowedPath, 200, "allowed"},
		{"deny", deniedPath, 403, "outside_tenant"},
	}
	for _, tc := range tests {
		t.Run("grpc/"+tc.name, func(t *testing.T) {
			resp, err := grpcAsk(h, client, "GET", tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); tc.status == 200 && resp.GetOkResponse() == nil || tc.status != 200 && int(got) != tc.status {
				t.Fatalf("got %v, want %d", resp, tc.status)
			}
		})
		t.Run("http/"+tc.name, func(t *testing.T) {
			resp, err := httpAsk(h, httpClient, "http://tenantgate", "GET", tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || (tc.status != 200 && resp.Header.Get("X-Tenantgate-Reason") != tc.reason) {
				t.Fatalf("got %d %q, want %d %s", resp.StatusCode, resp.Header.Get("X-Tenantgate-Reason"), tc.status, tc.reason)
			}
		})
	}
	resp, err := httpClient.Get("http://tenantgate/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz over the socket: %v, %v", resp, err)
	}
	resp.Body.Close()

	h.stop()
	for _, sock := range []string{grpcSock, httpSock} {
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("%s is left after shutdown (%v)", sock, err)
		}
	}
}

func TestListenUnixRefuses(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	lis, err := Listen("unix://" + live)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	regular := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(regular, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, addr, wantErr string
	}{
		{"empty path", "unix://", "empty socket path"},
		{"a live socket", "unix://" + live, "another process is listening"},
		{"a regular file", "unix://" + regular, "not a socket"},
		{"a missing directory", "unix://" + filepath.Join(dir, "nope", "x.sock"), "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Listen(tc.addr)
			if err == nil {
				l.Close()
				t.Fatalf("Listen(%s) succeeded", tc.addr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want %q", err, tc.wantErr)
			}
		})
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "keep me" {
		t.Errorf("the regular file was touched: %q %v", b, err)
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Errorf("the live socket was broken: %v", err)
	} else {
		c.Close()
	}
}

// TestDryRunDecisionLog: in dry-run mode a deny is let through with the
// reason it would have had, and the decision log says so; the token is
// never in the log.
func TestDryRunDecisionLog(t *testing.T) {
	var out syncbuf.Buffer
	dlog := decisionlog.New(&out, decisionlog.Options{})
	h := launch(t, serveOpts{dryRun: true, observer: func(*metrics.Metrics, *slog.Logger) engine.Observer { return dlog }})
	h.conn, _ = grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	t.Cleanup(func() { h.conn.Close() })
	h.client = authv3.NewAuthorizationClient(h.conn)

	tests := []struct {
		name       string
		check      func(method, path, user string, extra map[string]string) answer
		path       string
		wantDryRun bool
		wantReason string // in the log
	}{
		{"grpc deny let through", h.grpcCheck, deniedPath, true, "outside_tenant"},
		{"http deny let through", h.httpCheck, deniedPath, true, "outside_tenant"},
		{"http allow", h.httpCheck, allowedPath, false, "allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.check("GET", tc.path, alice, nil)
			if a.status != 200 {
				t.Fatalf("status %d, want 200 in dry-run mode", a.status)
			}
			if got := a.headers["x-tenantgate-dry-run-deny"]; tc.wantDryRun && got != tc.wantReason || !tc.wantDryRun && got != "" {
				t.Fatalf("x-tenantgate-dry-run-deny = %q", got)
			}
		})
	}
	h.stop()
	if err := dlog.Close(); err != nil {
		t.Fatal(err)
	}

	text := out.String()
	// Every JWT starts with eyJ (base64 of `{"`); the requests all sent one.
	if strings.Contains(text, "eyJ") || strings.Contains(text, "Bearer") {
		t.Fatalf("the decision log holds a token:\n%s", text)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %v: %s", err, sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) != len(tests) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tests), text)
	}
	rev := h.engine.Snapshot().Revision
	for i, tc := range tests {
		l := lines[i]
		wantResult := "allow"
		if tc.wantDryRun {
			wantResult = "deny"
		}
		if l["dry_run"] != tc.wantDryRun || l["reason"] != tc.wantReason || l["result"] != wantResult ||
			l["user"] != alice || l["path"] != tc.path || l["revision"] != rev {
			t.Errorf("%s: line %v", tc.name, l)
		}
	}
}

package server

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/settle"
	"github.com/tenantgate/tenantgate/internal/tenant"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
)

// harness is one real tenantgate: real listeners on loopback, real files.
type harness struct {
	t         *testing.T
	grpcAddr  string
	httpAddr  string
	adminAddr string // "" without serveOpts.config setting AdminAddr
	secret    string
	dataDir   string
	conn      *grpc.ClientConn
	client    authv3.AuthorizationClient
	engine    *engine.Engine
	stop      func()

	policies string
	logs     *syncbuf.Buffer // the server's log, unless serveOpts.logger was set
	met      *metrics.Metrics
}

// serveOpts varies what a test server needs beyond the demo: its own data
// or policies, a JWKS file, a decision deadline, TLS, listener addresses,
// dry run, an extra observer, and the last word on the server config.
type serveOpts struct {
	dataDir, policies  string // default: copies of ../../data and ../../policies
	jwksFile           string // besides the HS256 secret
	timeout            time.Duration
	grpcAddr, httpAddr string // default 127.0.0.1:0
	tls                *tlsconfig.Reloader
	dryRun             bool
	logger             *slog.Logger // default: captured in harness.logs
	observer           func(*metrics.Metrics, *slog.Logger) engine.Observer
	config             func(*Config)
}

// start serves the repository's demo data and policies (copied) with an
// HS256 secret.
func start(t *testing.T) *harness { return launch(t, serveOpts{}) }

// launch runs a real server as `tenantgate serve` wires it (settled reads,
// metrics, the watcher) on real listeners, with a gRPC client for it, and
// stops it when the test ends.
func launch(t *testing.T, o serveOpts) *harness {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = testdir.Copy(t, "../../data")
	}
	if o.policies == "" {
		o.policies = testdir.Copy(t, "../../policies")
	}
	o.timeout = cmp.Or(o.timeout, time.Second)
	o.grpcAddr = cmp.Or(o.grpcAddr, "127.0.0.1:0")
	o.httpAddr = cmp.Or(o.httpAddr, "127.0.0.1:0")
	h := &harness{t: t, dataDir: o.dataDir, policies: o.policies, logs: &syncbuf.Buffer{}, met: metrics.New()}
	h.secret = filepath.Join(t.TempDir(), "hs256.secret")
	if err := os.WriteFile(h.secret, []byte("test-secret-test-secret-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := o.logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(h.logs, nil))
	}
	ident := identity.Config{HS256SecretFile: h.secret, JWKSFile: o.jwksFile, Leeway: 60 * time.Second}
	var obs engine.Observer = h.met
	if o.observer != nil {
		obs = engine.Observers{h.met, o.observer(h.met, log)}
	}
	const debounce = 20 * time.Millisecond
	dirs := engine.Dirs{Data: o.dataDir, Policies: o.policies, Cache: tenant.NewCache()}
	h.engine = engine.New(engine.Options{Source: settle.Wrap(dirs, debounce), Identity: &ident,
		Logger: log, Observer: obs, Timeout: o.timeout, DryRun: o.dryRun})
	watched := append(dirs.Watched(), h.secret)
	if o.jwksFile != "" {
		watched = append(watched, o.jwksFile)
	}
	cfg := Config{
		GRPCAddr: o.grpcAddr, HTTPAddr: o.httpAddr, TLS: o.tls,
		Engine: h.engine, Metrics: h.met, Logger: log,
		Watch: watched, Debounce: debounce,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	ready := make(chan Addrs, 1)
	cfg.Ready = func(a Addrs) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case a := <-ready:
		h.grpcAddr, h.httpAddr = a.GRPC.String(), a.HTTP.String()
		if a.Admin != nil {
			h.adminAddr = a.Admin.String()
		}
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	// The client dials lazily: tests of TLS and Unix sockets make their own.
	conn, err := grpc.NewClient(h.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.conn, h.client = conn, authv3.NewAuthorizationClient(conn)
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) token(user string) string {
	h.t.Helper()
	tok, err := identity.SignHS256(h.secret, user, "", "", time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// answer is a decision as seen on the wire, the same shape for both modes.
type answer struct {
	status  int
	reason  string
	headers map[string]string // headers added (allow) or sent to the client (deny)
	removed []string          // client headers removed before the upstream (allow)
	body    string
}

func (h *harness) grpcCheck(method, path, user string, extra map[string]string) answer {
	h.t.Helper()
	hdrs := map[string]string{":authority": "portal.example", "x-request-id": "r-1", "x-forwarded-proto": "https"}
	if user != "" {
		hdrs["authorization"] = "Bearer " + h.token(user)
	}
	for k, v := range extra {
		hdrs[k] = v
	}
	resp, err := h.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Headers: hdrs, Host: "portal.example", Scheme: "https", Protocol: "HTTP/1.1",
		}},
	}})
	if err != nil {
		h.t.Fatalf("Check RPC error (must never happen): %v", err)
	}
	a := answer{headers: map[string]string{}}
	if ok := resp.GetOkResponse(); ok != nil {
		if resp.GetStatus().GetCode() != 0 {
			h.t.Fatalf("ok response with status %v", resp.GetStatus())
		}
		a.status, a.reason = 200, "allowed"
		for _, hv := range ok.GetHeaders() {
			if hv.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
				h.t.Errorf("header %s: append action %v, want OVERWRITE_IF_EXISTS_OR_ADD", hv.GetHeader().GetKey(), hv.GetAppendAction())
			}
			a.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
		}
		a.removed = ok.GetHeadersToRemove()
		return a
	}
	d := resp.GetDeniedResponse()
	if d == nil || resp.GetStatus().GetCode() == 0 {
		h.t.Fatalf("neither an ok nor a denied response: %v", resp)
	}
	a.status = int(d.GetStatus().GetCode())
	for _, hv := range d.GetHeaders() {
		a.headers[hv.GetHeader().GetKey()] = hv.GetHeader().GetValue()
	}
	a.reason = a.headers["x-tenantgate-reason"]
	a.body = d.GetBody()
	return a
}

// httpCheck sends the request the way Envoy's http_service does:
// <METHOD> /authz/<original path>.
func (h *harness) httpCheck(method, path, user string, extra map[string]string) answer {
	h.t.Helper()
	req, err := http.NewRequest(method, "http://"+h.httpAddr+"/authz", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.URL.Opaque = "/authz" + path // sent as is: no cleaning, no re-encoding
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(user))
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

// forwardCheck sends the request the way Caddy and Traefik do: GET /authz
// with X-Forwarded-Method and X-Forwarded-Uri.
func (h *harness) forwardCheck(method, path, user string, extra map[string]string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+"/authz", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Method", method)
	req.Header.Set("X-Forwarded-Uri", path)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(user))
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) answer {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, headers: map[string]string{}, body: string(body)}
	for k, v := range resp.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-tenantgate-") || lk == "www-authenticate" {
			a.headers[lk] = v[0]
		}
	}
	if rm := resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"); rm != "" {
		a.removed = strings.Split(rm, ",")
	}
	a.reason = a.headers["x-tenantgate-reason"]
	if resp.StatusCode == 200 {
		a.reason = "allowed"
	}
	return a
}

type checkCase struct {
	name    string
	user    string // "" sends no token
	method  string
	path    string
	status  int
	reason  string
	headers map[string]string // exact x-tenantgate-* headers expected on allow
}

// specCases walk tenantgate help requests row by row on the demo data (data/).
var specCases = []checkCase{
	// path checks
	{name: "bad_path dot segment", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/../northwind/users", status: 400, reason: "bad_path"},
	{name: "bad_path encoded slash", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso%2Fx/users", status: 400, reason: "bad_path"},
	{name: "bad_path before token", user: "", method: "GET", path: "/api/v1/customers//users", status: 400, reason: "bad_path"},
	// A ";" parameter would be dropped by a servlet upstream: owner
	// protection must not be sidestepped by naming "alice...;x".
	{name: "bad_path path parameter on an owner", user: "admin@northwind.example", method: "DELETE", path: "/api/v1/customers/contoso/users/alice%40contoso.example;x", status: 400, reason: "bad_path"},
	{name: "bad_path raw fragment", user: "admin@northwind.example", method: "DELETE", path: "/api/v1/customers/contoso/users/alice%40contoso.example#x", status: 400, reason: "bad_path"},
	// Raw bytes RFC 3986 never allows in a path (a raw space: TestRawSpaceIsBadPath).
	{name: "bad_path raw double quote", user: "alice@contoso.example", method: "GET", path: `/api/v1/customers/contoso/users/"alice@contoso.example"`, status: 400, reason: "bad_path"},
	{name: "bad_path raw less-than", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users/<x>", status: 400, reason: "bad_path"},
	{name: "bad_path raw caret", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/vbr-jobs/a^b", status: 400, reason: "bad_path"},
	{name: "bad_path raw backtick", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/vbr-jobs/a`b", status: 400, reason: "bad_path"},
	{name: "bad_path raw braces", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/{contoso}/users", status: 400, reason: "bad_path"},
	{name: "bad_path raw pipe", user: "admin@northwind.example", method: "DELETE", path: "/api/v1/customers/contoso/users/alice@contoso.example|x", status: 400, reason: "bad_path"},
	{name: "unsafe bytes in the query are not checked", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users?q={a|b}", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "alice@contoso.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso"}},
	// identity
	{name: "unauthenticated no token", user: "", method: "GET", path: "/api/v1/customers/contoso/users", status: 401, reason: "unauthenticated"},
	// user
	{name: "unknown_user", user: "mallory@evil.example", method: "GET", path: "/api/v1/customers/contoso/users", status: 403, reason: "unknown_user"},
	{name: "user_disabled", user: "dave@contoso.example", method: "GET", path: "/api/v1/customers/contoso/invoices", status: 403, reason: "user_disabled"},
	{name: "customer_disabled", user: "frank@fabrikam.example", method: "GET", path: "/api/v1/customers/fabrikam/users", status: 403, reason: "customer_disabled"},
	// method
	{name: "method lower-case", user: "alice@contoso.example", method: "get", path: "/api/v1/customers/contoso/users", status: 403, reason: "method_not_allowed"},
	{name: "method OPTIONS", user: "alice@contoso.example", method: "OPTIONS", path: "/api/v1/customers/contoso/users", status: 403, reason: "method_not_allowed"},
	// route
	{name: "no_route customer itself", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso", status: 403, reason: "no_route"},
	{name: "no_route computers alone", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/computers/pc-17", status: 403, reason: "no_route"},
	{name: "no_route unknown resource", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/widgets", status: 403, reason: "no_route"},
	{name: "no_route root", user: "alice@contoso.example", method: "GET", path: "/", status: 403, reason: "no_route"},
	// tenant
	{name: "outside_tenant parent", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/northwind/users", status: 403, reason: "outside_tenant"},
	{name: "outside_tenant unknown customer", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/nope/users", status: 403, reason: "outside_tenant"},
	{name: "outside_tenant location user below own", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso-paris/vbr-jobs", status: 403, reason: "outside_tenant"},
	{name: "outside_tenant read-own below own", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso-paris/summary", status: 403, reason: "outside_tenant"},
	// The scope rows' outside_tenant comes after module, role and owner
	// protection: erin is a location-limited company-user, carol read-own.
	{name: "scope row after role location user below own", user: "erin@contoso.example", method: "POST", path: "/api/v1/customers/contoso-paris/passphrases", status: 403, reason: "role_forbids"},
	{name: "scope row after module location user below own", user: "erin@contoso.example", method: "GET", path: "/api/v1/customers/contoso-paris/customers", status: 403, reason: "module_unavailable"},
	{name: "scope row outside_tenant location user below own", user: "erin@contoso.example", method: "POST", path: "/api/v1/customers/contoso-paris/vbr-jobs", status: 403, reason: "outside_tenant"},
	{name: "scope row after role read-own below own", user: "carol@contoso.example", method: "POST", path: "/api/v1/customers/contoso-paris/agent-jobs", status: 403, reason: "role_forbids"},
	// module
	{name: "module_unavailable customers on a site", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso-paris/customers", status: 403, reason: "module_unavailable"},
	{name: "module_unavailable quick-installation on a distributor", user: "owner@acme.example", method: "GET", path: "/api/v1/customers/acme/quick-installation", status: 403, reason: "module_unavailable"},
	// role
	{name: "role_forbids company-user configuration", user: "erin@contoso.example", method: "GET", path: "/api/v1/customers/contoso/locations/hq/users", status: 403, reason: "role_forbids"},
	{name: "role_forbids company-user write agent-jobs", user: "erin@contoso.example", method: "POST", path: "/api/v1/customers/contoso/locations/hq/agent-jobs", status: 403, reason: "role_forbids"},
	{name: "role_forbids administrator invoices", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/locations/hq/invoices", status: 403, reason: "role_forbids"},
	{name: "role_forbids invoice auditor summary", user: "ivan@contoso.example", method: "GET", path: "/api/v1/customers/contoso/summary", status: 403, reason: "role_forbids"},
	// owner protection
	{name: "owner protection administrator of a parent", user: "admin@northwind.example", method: "PUT", path: "/api/v1/customers/contoso/users/alice%40contoso.example", status: 403, reason: "role_forbids"},
	{name: "owner protection owner of a parent", user: "owner@acme.example", method: "DELETE", path: "/api/v1/customers/contoso/users/alice%40contoso.example", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "owner@acme.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso"}},
	{name: "owner protection read is not protected", user: "admin@northwind.example", method: "GET", path: "/api/v1/customers/contoso/users/alice@contoso.example", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "admin@northwind.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso"}},
	// Owner protection ignores the case of {id}: an upstream may look ids up
	// case-insensitively.
	{name: "owner protection id in another case", user: "admin@northwind.example", method: "PUT", path: "/api/v1/customers/contoso/users/Alice@Contoso.example", status: 403, reason: "role_forbids"},
	{name: "owner protection id in another case encoded", user: "admin@northwind.example", method: "DELETE", path: "/api/v1/customers/contoso/users/ALICE%40contoso.EXAMPLE", status: 403, reason: "role_forbids"},
	{name: "owner protection id in another case owner above", user: "owner@acme.example", method: "PUT", path: "/api/v1/customers/contoso/users/Alice@Contoso.example", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "owner@acme.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso"}},
	// A users {id} that no user could have has no route.
	{name: "no_route user id with an encoded space", user: "admin@northwind.example", method: "PUT", path: "/api/v1/customers/contoso/users/alice%40contoso.example%20", status: 403, reason: "no_route"},
	{name: "no_route user id non-breaking space", user: "admin@northwind.example", method: "GET", path: "/api/v1/customers/contoso/users/%C2%A0", status: 403, reason: "no_route"},
	{name: "no_route user id with a comma", user: "admin@northwind.example", method: "DELETE", path: "/api/v1/customers/contoso/users/alice%40contoso.example,x", status: 403, reason: "no_route"},
	// location scope
	{name: "location_forbidden other location", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs", status: 403, reason: "location_forbidden"},
	{name: "location_forbidden write without qualifier", user: "bob@contoso.example", method: "POST", path: "/api/v1/customers/contoso/vbr-jobs", status: 403, reason: "location_forbidden"},
	{name: "location read without qualifier carries scope", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/vbr-jobs", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso", "x-tenantgate-locations": "hq"}},
	{name: "location write with qualifier", user: "bob@contoso.example", method: "POST", path: "/api/v1/customers/contoso/locations/hq/vbr-jobs", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso"}},
	{name: "location scope sorted list", user: "erin@contoso.example", method: "GET", path: "/api/v1/customers/contoso/summary?x=1", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "erin@contoso.example", "x-tenantgate-role": "company-user", "x-tenantgate-customer": "contoso", "x-tenantgate-locations": "branch-1,hq"}},
	// locations/{id} is a location qualifier: bob is limited to hq.
	{name: "location_forbidden locations id of another location", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/locations/branch-1", status: 403, reason: "location_forbidden"},
	{name: "location_forbidden nested locations id write", user: "bob@contoso.example", method: "PUT", path: "/api/v1/customers/contoso/locations/hq/locations/branch-1", status: 403, reason: "location_forbidden"},
	{name: "location_forbidden nested locations id delete", user: "bob@contoso.example", method: "DELETE", path: "/api/v1/customers/contoso/locations/hq/locations/branch-1/", status: 403, reason: "location_forbidden"},
	{name: "location_forbidden locations write naming none", user: "bob@contoso.example", method: "POST", path: "/api/v1/customers/contoso/locations", status: 403, reason: "location_forbidden"},
	{name: "location write of own locations id", user: "bob@contoso.example", method: "PUT", path: "/api/v1/customers/contoso/locations/hq", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso"}},
	{name: "location read of locations collection carries scope", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/locations", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso", "x-tenantgate-locations": "hq"}},
	// computer scope
	{name: "computer_forbidden other computer", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/computers/pc-99/agent-jobs", status: 403, reason: "computer_forbidden"},
	{name: "computer_forbidden protected-computers id", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/protected-computers/pc-99", status: 403, reason: "computer_forbidden"},
	{name: "computer_forbidden id without qualifier", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/summary/today", status: 403, reason: "computer_forbidden"},
	{name: "computer collection read carries scope", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/protected-computers", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "carol@contoso.example", "x-tenantgate-role": "subtenant-user", "x-tenantgate-customer": "contoso", "x-tenantgate-computers": "pc-17,pc-18"}},
	{name: "computer qualifier own computer", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/protected-computers/pc-17/", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "carol@contoso.example", "x-tenantgate-role": "subtenant-user", "x-tenantgate-customer": "contoso"}},
	{name: "role_forbids subtenant write", user: "carol@contoso.example", method: "POST", path: "/api/v1/customers/contoso/computers/pc-17/agent-jobs", status: 403, reason: "role_forbids"},
	// plain allows
	{name: "owner reads users", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "alice@contoso.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso"}},
	{name: "distributor owner reads a site below", user: "owner@acme.example", method: "HEAD", path: "/api/v1/customers/contoso-paris/summary", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "owner@acme.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso-paris"}},
	{name: "invoice auditor reads invoices", user: "ivan@contoso.example", method: "GET", path: "/api/v1/customers/contoso/invoices", status: 200, reason: "allowed",
		headers: map[string]string{"x-tenantgate-user": "ivan@contoso.example", "x-tenantgate-role": "invoice-auditor", "x-tenantgate-customer": "contoso"}},
}

func TestSpecRows(t *testing.T) {
	h := start(t)
	modes := map[string]func(method, path, user string, extra map[string]string) answer{
		"grpc":         h.grpcCheck,
		"http":         h.httpCheck,
		"forward-auth": h.forwardCheck,
	}
	for _, mode := range []string{"grpc", "http", "forward-auth"} {
		check := modes[mode]
		for _, tc := range specCases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				a := check(tc.method, tc.path, tc.user, nil)
				if a.status != tc.status || a.reason != tc.reason {
					t.Fatalf("got %d %s, want %d %s (body %q)", a.status, a.reason, tc.status, tc.reason, a.body)
				}
				if tc.status == 200 {
					if !mapsEqual(a.headers, tc.headers) {
						t.Errorf("headers %v, want %v", a.headers, tc.headers)
					}
					return
				}
				var body struct{ Error, Reason string }
				if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Reason != tc.reason {
					t.Errorf("body %q: want JSON with reason %q (%v)", a.body, tc.reason, err)
				}
				wantErr := map[int]string{400: "bad_request", 401: "unauthenticated", 403: "forbidden", 503: "unavailable"}[tc.status]
				if body.Error != wantErr {
					t.Errorf("body error %q, want %q", body.Error, wantErr)
				}
				if got := a.headers["www-authenticate"]; (tc.status == 401) != (got == "Bearer") {
					t.Errorf("www-authenticate %q on status %d", got, tc.status)
				}
			})
		}
	}
}

// TestRawSpaceIsBadPath: a raw space in the path is bad_path over gRPC and
// in the forward-auth headers. The <METHOD> /authz/<path> form cannot carry
// one: the request line ends at the space, and Go's server refuses the line
// (400) before tenantgate sees it, which is a deny too.
func TestRawSpaceIsBadPath(t *testing.T) {
	h := start(t)
	const path = "/api/v1/customers/contoso/users/alice@contoso.example /x"
	for name, check := range map[string]func(method, path, user string, extra map[string]string) answer{"grpc": h.grpcCheck, "forward-auth": h.forwardCheck} {
		if a := check("PUT", path, "admin@northwind.example", nil); a.status != 400 || a.reason != "bad_path" {
			t.Errorf("%s: got %d %s, want 400 bad_path", name, a.status, a.reason)
		}
	}
	conn, err := net.Dial("tcp", h.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /authz%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", path, h.token("admin@northwind.example"))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("http path form: status %d, want 400", resp.StatusCode)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestForgedHeaders: a client's own x-tenantgate-* headers never reach the
// upstream: the ones tenantgate sets overwrite, the others are removed.
func TestForgedHeaders(t *testing.T) {
	h := start(t)
	forged := map[string]string{"x-tenantgate-user": "owner@acme.example", "x-tenantgate-locations": "everywhere", "X-Tenantgate-Role": "company-owner"}
	for name, check := range map[string]func(method, path, user string, extra map[string]string) answer{"grpc": h.grpcCheck, "http": h.httpCheck} {
		t.Run(name, func(t *testing.T) {
			a := check("GET", "/api/v1/customers/contoso/users", "alice@contoso.example", forged)
			if a.status != 200 {
				t.Fatalf("status %d %s", a.status, a.reason)
			}
			if a.headers["x-tenantgate-user"] != "alice@contoso.example" || a.headers["x-tenantgate-role"] != "company-owner" {
				t.Errorf("headers %v", a.headers)
			}
			// Every tenantgate header the decision did not set, sent or not.
			removed := slices.Sorted(slices.Values(a.removed))
			want := []string{"x-tenantgate-computers", "x-tenantgate-dry-run-deny", "x-tenantgate-locations", "x-tenantgate-reason"}
			if !slices.Equal(removed, want) {
				t.Errorf("removed %v, want %v", removed, want)
			}
		})
	}
}

// TestNginxOriginalHeaders: nginx auth_request sends X-Original-Method/URI.
func TestNginxOriginalHeaders(t *testing.T) {
	h := start(t)
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.httpAddr+"/authz", nil)
	req.Header.Set("X-Original-Method", "POST")
	req.Header.Set("X-Original-URI", "/api/v1/customers/contoso/vbr-jobs")
	req.Header.Set("Authorization", "Bearer "+h.token("bob@contoso.example"))
	a := h.do(req)
	if a.status != 403 || a.reason != "location_forbidden" {
		t.Fatalf("got %d %s, want 403 location_forbidden", a.status, a.reason)
	}
}

func TestHealthAndStatus(t *testing.T) {
	h := start(t)
	hc := healthpb.NewHealthClient(h.conn)
	for _, svc := range []string{"", "envoy.service.auth.v3.Authorization"} {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", svc, r, err)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/status": 200} {
		resp, err := http.Get("http://" + h.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	h.grpcCheck("GET", "/api/v1/customers/contoso/users", "alice@contoso.example", nil)
	h.grpcCheck("GET", "/api/v1/customers/northwind/users", "alice@contoso.example", nil)
	resp, err := http.Get("http://" + h.httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`tenantgate_decisions_total{reason="allowed",result="allow"} 1`,
		`tenantgate_decisions_total{reason="outside_tenant",result="deny"} 1`,
		`tenantgate_reloads_total{result="success"} 1`,
		`tenantgate_decision_duration_seconds_count 2`,
		`tenantgate_snapshot_info{revision="` + h.engine.Snapshot().Revision + `"} 1`,
		`tenantgate_snapshot_build_duration_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var st engine.Status
	resp, err = http.Get("http://" + h.httpAddr + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Revision == "" || len(st.Files) == 0 || st.LastError != "" || st.BuildTime <= 0 {
		t.Errorf("status %+v", st)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/httpauthz"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// proxyCase is one request through a proxy and what must come of it.
type proxyCase struct {
	name   string
	method string
	target string            // the raw request target, sent as is
	user   string            // "" sends no token
	header map[string]string // more client headers (forged ones, a bad token)
	body   string
	status int
	reason string // on a deny
	// upstream is, on an allow, exactly the x-tenantgate-* headers the
	// upstream must get (canonical names, one value each).
	upstream map[string]string
}

// forged is what a client might send to pass as someone else.
var forged = map[string]string{
	"X-Tenantgate-User":         "owner@acme.example",
	"x-tenantgate-role":         "company-owner",
	"X-TENANTGATE-CUSTOMER":     "acme",
	"x-tenantgate-locations":    "everywhere",
	"X-Tenantgate-Computers":    "pc-1,pc-2,pc-3",
	"X-Tenantgate-Reason":       "allowed",
	"X-Tenantgate-Dry-Run-Deny": "none",
}

// forgedEverySpelling is every header tenantgate may set in each spelling a
// stack may read as it (any case; `_` for `-`: CGI, PHP and WSGI map both to
// HTTP_X_TENANTGATE_USER), other x-tenantgate-* names, and the target
// headers the proxies set for tenantgate, which the upstream must not get
// from the client either (it may log or route by them).
var forgedEverySpelling = func() map[string]string {
	h := map[string]string{}
	for i, name := range decision.HeaderNames {
		rest := strings.TrimPrefix(name, decision.HeaderPrefix)
		under := strings.ReplaceAll(rest, "-", "_")
		h[http.CanonicalHeaderKey(name)] = "forged"
		h[strings.ToUpper(name)] = "forged"
		h["x_tenantgate_"+under] = "forged"
		h["X_TENANTGATE_"+strings.ToUpper(under)] = "forged"
		h["x-tenantgate_"+under] = "forged"
		h["x_tenantgate-"+rest] = "forged"
		if i%2 == 0 {
			h["X-Tenantgate_"+strings.ToUpper(rest)] = "forged"
		}
	}
	for _, name := range []string{"X-Tenantgate-Tenant", "x_tenantgate_tenant", "X_Tenantgate-Admin", "x-tenantgate_admin"} {
		h[name] = "forged"
	}
	for name, v := range targetHeaders {
		h[name] = v
		h[strings.ReplaceAll(strings.ToLower(name), "-", "_")] = v
	}
	return h
}()

// targetHeaders name another request than the one sent: the proxies set
// them for tenantgate only.
var targetHeaders = map[string]string{
	"X-Original-URI": "/api/v1/customers/northwind/users", "X-Original-Method": "DELETE",
	"X-Forwarded-Uri": "/api/v1/customers/northwind/users", "X-Forwarded-Method": "DELETE",
}

// isTargetHeader: name is one of targetHeaders, any case, `_` read as `-`.
func isTargetHeader(name string) bool {
	for target := range targetHeaders {
		if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), target) {
			return true
		}
	}
	return false
}

func with(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func tgHeaders(user, role, customer string, scope ...string) map[string]string {
	h := map[string]string{"X-Tenantgate-User": user, "X-Tenantgate-Role": role, "X-Tenantgate-Customer": customer}
	for i := 0; i+1 < len(scope); i += 2 {
		h[scope[i]] = scope[i+1]
	}
	return h
}

var proxyCases = []proxyCase{
	// allows
	{name: "allow owner reads users", method: "GET", target: "/api/v1/customers/contoso/users", user: "alice@contoso.example",
		status: 200, upstream: tgHeaders("alice@contoso.example", "company-owner", "contoso")},
	{name: "allow with query and location scope", method: "GET", target: "/api/v1/customers/contoso/vbr-jobs?page=2&sort=name", user: "bob@contoso.example",
		status: 200, upstream: tgHeaders("bob@contoso.example", "company-administrator", "contoso", "X-Tenantgate-Locations", "hq")},
	{name: "allow with computer scope", method: "GET", target: "/api/v1/customers/contoso/protected-computers", user: "carol@contoso.example",
		status: 200, upstream: tgHeaders("carol@contoso.example", "subtenant-user", "contoso", "X-Tenantgate-Computers", "pc-17,pc-18")},
	{name: "allow write with a body", method: "POST", target: "/api/v1/customers/contoso/locations/hq/vbr-jobs", user: "bob@contoso.example",
		body: `{"name":"nightly"}`, status: 200, upstream: tgHeaders("bob@contoso.example", "company-administrator", "contoso")},
	{name: "allow encoded user id", method: "GET", target: "/api/v1/customers/contoso/users/alice%40contoso.example", user: "admin@northwind.example",
		status: 200, upstream: tgHeaders("admin@northwind.example", "company-administrator", "contoso")},

	// forged headers never reach the upstream
	{name: "forged headers on an allow", method: "GET", target: "/api/v1/customers/contoso/users", user: "alice@contoso.example",
		header: forged, status: 200, upstream: tgHeaders("alice@contoso.example", "company-owner", "contoso")},
	{name: "forged scope header where tenantgate sets one", method: "GET", target: "/api/v1/customers/contoso/vbr-jobs", user: "bob@contoso.example",
		header: forged, status: 200, upstream: tgHeaders("bob@contoso.example", "company-administrator", "contoso", "X-Tenantgate-Locations", "hq")},
	{name: "forged headers in every spelling on an allow", method: "GET", target: "/api/v1/customers/contoso/users", user: "alice@contoso.example",
		header: forgedEverySpelling, status: 200, upstream: tgHeaders("alice@contoso.example", "company-owner", "contoso")},
	{name: "forged headers in every spelling on a scoped allow", method: "GET", target: "/api/v1/customers/contoso/protected-computers", user: "carol@contoso.example",
		header: forgedEverySpelling, status: 200, upstream: tgHeaders("carol@contoso.example", "subtenant-user", "contoso", "X-Tenantgate-Computers", "pc-17,pc-18")},
	{name: "forged headers on a deny", method: "GET", target: "/api/v1/customers/acme/users",
		header: forged, status: 401, reason: "unauthenticated"},
	{name: "forged target headers", method: "GET", target: "/api/v1/customers/northwind/users", user: "alice@contoso.example",
		header: map[string]string{
			"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/api/v1/customers/contoso/users",
			"X-Original-Method": "GET", "X-Original-URI": "/api/v1/customers/contoso/users",
		}, status: 403, reason: "outside_tenant"},

	// denies
	{name: "401 no token", method: "GET", target: "/api/v1/customers/contoso/users", status: 401, reason: "unauthenticated"},
	{name: "401 bad token", method: "GET", target: "/api/v1/customers/contoso/users",
		header: map[string]string{"Authorization": "Bearer not.a.token"}, status: 401, reason: "unauthenticated"},
	{name: "403 outside_tenant", method: "GET", target: "/api/v1/customers/northwind/users", user: "alice@contoso.example", status: 403, reason: "outside_tenant"},
	{name: "403 location_forbidden", method: "GET", target: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs", user: "bob@contoso.example", status: 403, reason: "location_forbidden"},
	{name: "403 role_forbids write with a body", method: "POST", target: "/api/v1/customers/contoso/locations/hq/agent-jobs", user: "erin@contoso.example",
		body: `{"name":"x"}`, status: 403, reason: "role_forbids"},
	{name: "403 user_disabled", method: "GET", target: "/api/v1/customers/contoso/invoices", user: "dave@contoso.example", status: 403, reason: "user_disabled"},
	{name: "400 bad_path encoded slash", method: "GET", target: "/api/v1/customers/contoso%2Fx/users", user: "alice@contoso.example", status: 400, reason: "bad_path"},
	{name: "400 bad_path encoded slash no token", method: "GET", target: "/api/v1/customers/contoso%2fx/users", status: 400, reason: "bad_path"},
	{name: "400 bad_path dot segment", method: "GET", target: "/api/v1/customers/contoso/../northwind/users", user: "alice@contoso.example", status: 400, reason: "bad_path"},
	{name: "400 bad_path encoded dots", method: "GET", target: "/api/v1/customers/contoso/%2e%2e/northwind/users", user: "alice@contoso.example", status: 400, reason: "bad_path"},
	{name: "400 bad_path double slash", method: "GET", target: "/api/v1/customers//contoso/users", user: "alice@contoso.example", status: 400, reason: "bad_path"},
}

// TestProxies sends real requests through nginx and Caddy, each in front of
// a real tenantgate and a recording upstream.
func TestProxies(t *testing.T) {
	tg := startTenantgate(t)
	up := startUpstream(t)
	var seq atomic.Int64
	for _, kind := range proxyKinds {
		t.Run(kind.name, func(t *testing.T) {
			p := startProxy(t, kind, tg.httpAddr, up.addr)
			checkLoopbackOnly(t, p)
			for _, tc := range proxyCases {
				t.Run(tc.name, func(t *testing.T) {
					id := kind.name + "-" + strconv.FormatInt(seq.Add(1), 10)
					h := with(tc.header, map[string]string{idHeader: id})
					if tc.user != "" {
						h["Authorization"] = "Bearer " + tg.token(tc.user)
					}
					r := p.send(t, tc.method, tc.target, h, tc.body)
					got := up.requests(id)
					if tc.status != http.StatusOK {
						checkDeny(t, p, r, tc.status, tc.reason, h["Authorization"])
						if len(got) != 0 {
							t.Errorf("a denied request reached the upstream: %+v", got)
						}
						return
					}
					if r.status != http.StatusOK {
						t.Fatalf("status %d (reason %q, body %q), want 200\n%s", r.status, r.header.Get("X-Tenantgate-Reason"), r.body, p.logs())
					}
					if len(got) != 1 {
						t.Fatalf("the upstream got %d requests, want 1", len(got))
					}
					checkUpstream(t, kind, got[0], tc, h)
				})
			}
		})
	}
}

// checkDeny checks a deny as the client sees it: the status, the reason
// header (once), the JSON body and, on a 401, WWW-Authenticate: Bearer,
// with error="invalid_token" when the client sent a bearer token (auth is
// the Authorization it sent).
func checkDeny(t *testing.T, p *proxy, r reply, status int, reason, auth string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (reason %q, body %q)\n%s", r.status, status, r.header.Values("X-Tenantgate-Reason"), r.body, p.logs())
	}
	if got := r.header.Values("X-Tenantgate-Reason"); len(got) != 1 || got[0] != reason {
		t.Errorf("x-tenantgate-reason %q, want [%s]", got, reason)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q, want application/json", ct)
	}
	var body struct{ Error, Reason string }
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Errorf("body %q is not JSON: %v", r.body, err)
	}
	d := decision.Decision{Status: status, Reason: reason}
	if body.Error != d.ErrorWord() || body.Reason != reason {
		t.Errorf("body %q, want %s", r.body, d.Body())
	}
	wantAuth := []string(nil)
	if status == http.StatusUnauthorized {
		wantAuth = []string{"Bearer"}
		if identity.BearerSent(auth) {
			wantAuth = []string{`Bearer error="invalid_token"`}
		}
	}
	if got := r.header.Values("Www-Authenticate"); strings.Join(got, "|") != strings.Join(wantAuth, "|") {
		t.Errorf("www-authenticate %q, want %q", got, wantAuth)
	}
}

// checkUpstream checks what the upstream got on an allow: the request as
// the client sent it, exactly tenantgate's x-tenantgate-* headers (in any
// spelling: decision.IsTenantgateHeader), and none of the target headers
// the client sent.
func checkUpstream(t *testing.T, kind proxyKind, s seenRequest, tc proxyCase, sent map[string]string) {
	t.Helper()
	if s.Method != tc.method || s.URI != tc.target {
		t.Errorf("upstream got %s %s, want %s %s", s.Method, s.URI, tc.method, tc.target)
	}
	if s.Body != tc.body {
		t.Errorf("upstream got body %q, want %q", s.Body, tc.body)
	}
	if got := s.Header.Get("Authorization"); got != sent["Authorization"] {
		t.Errorf("upstream got authorization %q, want the client's", got)
	}
	// The upstream's names, as Go's server spells them: canonical, with a
	// `_` spelling kept apart from the `-` one.
	got := map[string][]string{}
	for name, vals := range s.Header {
		if decision.IsTenantgateHeader(name) {
			got[name] = vals
		}
		if isTargetHeader(name) {
			t.Errorf("upstream header %s: got %q, want no client target header", name, vals)
		}
	}
	want := maps.Clone(tc.upstream)
	// nginx cannot remove headers by a prefix: a client's x-tenantgate-*
	// name that tenantgate never sets reaches the app (the README says so:
	// the app trusts only the named headers). Its `_` spellings do not:
	// nginx drops every header with `_` in its name.
	if kind.keepsOtherTenantgateNames {
		for name, v := range sent {
			lower := strings.ToLower(name)
			if decision.IsTenantgateHeader(name) && !strings.Contains(name, "_") && !slices.Contains(decision.HeaderNames, lower) {
				want[http.CanonicalHeaderKey(name)] = v
			}
		}
	}
	var problems []string
	for name, w := range want {
		if vals := got[name]; len(vals) != 1 || vals[0] != w {
			problems = append(problems, name+": got "+strconv.Quote(strings.Join(vals, "|"))+", want "+strconv.Quote(w))
		}
	}
	for name, vals := range got {
		if _, ok := want[name]; !ok {
			problems = append(problems, name+": got "+strconv.Quote(strings.Join(vals, "|"))+", want no such header")
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error("upstream header " + p)
	}
}

// checkLoopbackOnly reads the kernel's socket tables: every listening
// socket on the proxy's port must be bound to 127.0.0.1.
func checkLoopbackOnly(t *testing.T, p *proxy) {
	t.Helper()
	_, portStr, _ := strings.Cut(p.addr, ":")
	port, _ := strconv.Atoi(portStr)
	hexPort := strings.ToUpper(strconv.FormatInt(int64(port), 16))
	for len(hexPort) < 4 {
		hexPort = "0" + hexPort
	}
	found := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			if table == "/proc/net/tcp6" && os.IsNotExist(err) {
				continue // no IPv6 in this kernel
			}
			t.Fatalf("%s: %v", table, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, prt, _ := strings.Cut(f[1], ":")
			if prt != hexPort {
				continue
			}
			found++
			if addr != "0100007F" { // 127.0.0.1, little-endian
				t.Errorf("%s listens on %s:%d (%s), want 127.0.0.1 only", p.kind.name, addr, port, table)
			}
		}
	}
	if found == 0 {
		t.Errorf("%s: no listening socket on port %d in /proc/net/tcp", p.kind.name, port)
	}
}

// failingChecker answers every request as tenantgate does when it cannot
// decide (no snapshot, an evaluation error, a deadline overrun).
type failingChecker struct{}

func (failingChecker) Check(context.Context, *engine.Request) engine.Result {
	return engine.Result{Decision: decision.Internal()}
}

// TestProxiesFailClosed: when tenantgate answers 503 internal_error, or
// cannot be reached at all, the request never reaches the upstream.
func TestProxiesFailClosed(t *testing.T) {
	up := startUpstream(t)
	// tenantgate's real HTTP mode, answering 503 internal_error to everything.
	failing := httptest.NewServer(httpauthz.New(failingChecker{}))
	t.Cleanup(failing.Close)
	// An address where nothing listens: tenantgate is down.
	down := "127.0.0.1:" + strconv.Itoa(freePort(t))

	var seq atomic.Int64
	for _, kind := range proxyKinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, tc := range []struct {
				name, tenantgate string
				status           int
				reason           string
			}{
				{"tenantgate answers 503", failing.Listener.Addr().String(), http.StatusServiceUnavailable, "internal_error"},
				{"tenantgate unreachable", down, kind.unreachableStatus, "internal_error"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p := startProxy(t, kind, tc.tenantgate, up.addr)
					id := kind.name + "-fail-" + strconv.FormatInt(seq.Add(1), 10)
					r := p.send(t, "GET", "/api/v1/customers/contoso/users", map[string]string{idHeader: id, "Authorization": "Bearer x"}, "")
					if got := up.requests(id); len(got) != 0 {
						t.Errorf("the request reached the upstream: %+v", got)
					}
					if tc.status == http.StatusBadGateway {
						// Caddy's own answer: no reason, but closed.
						if r.status != tc.status {
							t.Errorf("status %d, want %d", r.status, tc.status)
						}
						return
					}
					checkDeny(t, p, r, tc.status, tc.reason, "Bearer x")
				})
			}
		})
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/server"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

// tenantgate is one real tenantgate, in process: real listeners on
// loopback ports, the repository's demo data and policies (copied), an
// HS256 secret file.
type tenantgate struct {
	t        *testing.T
	grpcAddr string
	httpAddr string
	secret   string
}

// startTenantgate serves ../../data and ../../policies with server.Run on
// port 0, and stops it when the test ends.
func startTenantgate(t *testing.T) *tenantgate {
	t.Helper()
	tg := &tenantgate{t: t, secret: filepath.Join(t.TempDir(), "hs256.secret")}
	if err := os.WriteFile(tg.secret, []byte("e2e-secret-e2e-secret-e2e-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ident := identity.Config{HS256SecretFile: tg.secret, Leeway: 60 * time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	met := metrics.New()
	dirs := engine.Dirs{Data: testdir.Copy(t, "../../data"), Policies: testdir.Copy(t, "../../policies")}
	// A generous decision deadline: the machine may be loaded, and this
	// test is about the proxies, not about the deadline.
	eng := engine.New(engine.Options{Source: dirs, Identity: &ident, Logger: log, Observer: met, Timeout: 2 * time.Second})
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Engine: eng, Metrics: met, Logger: log,
			Watch: append(dirs.Watched(), tg.secret), Debounce: 20 * time.Millisecond,
			Ready: func(a server.Addrs) { ready <- [2]string{a.GRPC.String(), a.HTTP.String()} },
		})
	}()
	select {
	case a := <-ready:
		tg.grpcAddr, tg.httpAddr = a[0], a[1]
	case err := <-done:
		cancel()
		t.Fatalf("tenantgate exited: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("tenantgate did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tenantgate: %v", err)
		}
	})
	return tg
}

// token mints a valid HS256 token for user.
func (tg *tenantgate) token(user string) string {
	tg.t.Helper()
	tok, err := identity.SignHS256(tg.secret, user, "", "", time.Hour, time.Now())
	if err != nil {
		tg.t.Fatal(err)
	}
	return tok
}

// The tenantgate binary, built once per test run for the tests that need
// the real command line (`tenantgate serve -h`).
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func tenantgateBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tenantgate-e2e-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tenantgate")
		// `go test` puts its own go first on PATH, so this is the same
		// toolchain, and the build cache makes it quick.
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tenantgate")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/tenantgate: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// serveFlag is one flag of `tenantgate serve`, as its -h prints it.
type serveFlag struct {
	name, def string
}

var flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)`)
var defaultValue = regexp.MustCompile(`\(default "?([^")]*)"?\)`)

// serveFlags runs `tenantgate serve -h` and returns its flags by name.
func serveFlags(t *testing.T) map[string]serveFlag {
	t.Helper()
	cmd := exec.Command(tenantgateBinary(t), "serve", "-h")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("tenantgate serve -h: %v\n%s", err, out.String())
	}
	text := out.String()
	flags := map[string]serveFlag{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = serveFlag{name: last}
		}
		// The default is printed at the end of the usage text, which may
		// wrap onto the next lines.
		if m := defaultValue.FindStringSubmatch(line); m != nil && last != "" {
			f := flags[last]
			f.def = m[1]
			flags[last] = f
		}
	}
	if len(flags) == 0 || !strings.Contains(text, "-grpc-addr") {
		t.Fatalf("tenantgate serve -h printed no flags:\n%s", text)
	}
	return flags
}

// contractCases are contract points of `tenantgate help requests` and `tenantgate help paths`, sent
// through the real proxies: scope rows in their place, every location
// qualifier checked, users/{id} rules, raw bytes RFC 3986 never allows.
var contractCases = []proxyCase{
	// The scope rows' outside_tenant comes after module, role and owner
	// protection (erin is a location-limited company-user).
	{name: "scope row after role", method: "POST", target: "/api/v1/customers/contoso-paris/passphrases", user: "erin@contoso.example", status: 403, reason: "role_forbids"},
	{name: "scope row after module", method: "GET", target: "/api/v1/customers/contoso-paris/customers", user: "erin@contoso.example", status: 403, reason: "module_unavailable"},
	{name: "scope row outside_tenant", method: "POST", target: "/api/v1/customers/contoso-paris/vbr-jobs", user: "erin@contoso.example", status: 403, reason: "outside_tenant"},
	// locations/{id} is a location qualifier (bob is limited to hq).
	{name: "nested locations id", method: "PUT", target: "/api/v1/customers/contoso/locations/hq/locations/branch-1", user: "bob@contoso.example", status: 403, reason: "location_forbidden"},
	{name: "locations id of another location", method: "GET", target: "/api/v1/customers/contoso/locations/branch-1", user: "bob@contoso.example", status: 403, reason: "location_forbidden"},
	{name: "locations write naming none", method: "POST", target: "/api/v1/customers/contoso/locations", user: "bob@contoso.example", status: 403, reason: "location_forbidden"},
	{name: "locations id of own location", method: "PUT", target: "/api/v1/customers/contoso/locations/hq", user: "bob@contoso.example",
		status: 200, upstream: tgHeaders("bob@contoso.example", "company-administrator", "contoso")},
	// users/{id}: case-insensitive owner protection, ids no user could have.
	{name: "owner id in another case", method: "PUT", target: "/api/v1/customers/contoso/users/Alice@Contoso.example", user: "admin@northwind.example", status: 403, reason: "role_forbids"},
	{name: "user id with an encoded space", method: "DELETE", target: "/api/v1/customers/contoso/users/alice%40contoso.example%20", user: "admin@northwind.example", status: 403, reason: "no_route"},
	{name: "user id non-breaking space", method: "GET", target: "/api/v1/customers/contoso/users/%C2%A0", user: "admin@northwind.example", status: 403, reason: "no_route"},
	// Raw bytes RFC 3986 never allows in a path: bad_path where the proxy
	// hands them on raw (nginx). Caddy re-encodes them (%7C, %7B, ...) both
	// in X-Forwarded-Uri and upstream, so tenantgate decides on exactly the
	// encoded path the upstream gets: rawBytesReachTenantgate.
	{name: "raw pipe", method: "DELETE", target: "/api/v1/customers/contoso/users/alice@contoso.example|x", user: "admin@northwind.example", status: 400, reason: "bad_path"},
	{name: "raw braces", method: "GET", target: "/api/v1/customers/{contoso}/users", user: "alice@contoso.example", status: 400, reason: "bad_path"},
	{name: "raw caret", method: "GET", target: "/api/v1/customers/contoso/vbr-jobs/a^b", user: "alice@contoso.example", status: 400, reason: "bad_path"},
	{name: "raw backtick", method: "GET", target: "/api/v1/customers/contoso/vbr-jobs/a`b", user: "alice@contoso.example", status: 400, reason: "bad_path"},
}

// rawBytesReachTenantgate tells the proxies that pass a raw unsafe path
// byte on as is (so tenantgate denies bad_path) from those that re-encode it.
var rawBytesReachTenantgate = map[string]bool{"nginx": true, "caddy": false}

// TestContractThroughProxies sends contractCases through nginx and Caddy,
// each in front of a real tenantgate and a recording upstream.
func TestContractThroughProxies(t *testing.T) {
	tg := startTenantgate(t)
	up := startUpstream(t)
	n := 0
	for _, kind := range proxyKinds {
		t.Run(kind.name, func(t *testing.T) {
			p := startProxy(t, kind, tg.httpAddr, up.addr)
			for _, tc := range contractCases {
				t.Run(tc.name, func(t *testing.T) {
					n++
					id := fmt.Sprintf("contract-%s-%d", kind.name, n)
					h := map[string]string{idHeader: id, "Authorization": "Bearer " + tg.token(tc.user)}
					r := p.send(t, tc.method, tc.target, h, "")
					got := up.requests(id)
					if tc.reason == "bad_path" && !rawBytesReachTenantgate[kind.name] {
						// Whatever the answer, no raw unsafe byte may
						// reach the upstream.
						for _, s := range got {
							if strings.ContainsAny(s.URI, " \"<>^`{|}") {
								t.Errorf("the upstream got %q", s.URI)
							}
						}
						return
					}
					if tc.status != 200 {
						checkDeny(t, p, r, tc.status, tc.reason, h["Authorization"])
						if len(got) != 0 {
							t.Errorf("a denied request reached the upstream: %+v", got)
						}
						return
					}
					if r.status != 200 || len(got) != 1 {
						t.Fatalf("status %d (reason %q), upstream got %d requests; want 200 and 1", r.status, r.header.Get("X-Tenantgate-Reason"), len(got))
					}
					checkUpstream(t, kind, got[0], tc, h)
				})
			}
		})
	}
}

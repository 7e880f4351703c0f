package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

func testEngine(tb testing.TB, opts ...func(*Options)) (*Engine, string) {
	tb.Helper()
	secret := filepath.Join(tb.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	ident := identity.Config{HS256SecretFile: secret, Leeway: time.Minute}
	e0 := Options{
		Source:   Dirs{Data: "../../data", Policies: "../../policies"},
		Identity: &ident,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Timeout:  time.Second,
	}
	for _, o := range opts {
		o(&e0)
	}
	e := New(e0)
	if err := e.Reload(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return e, secret
}

func BenchmarkCheckDemo(b *testing.B) {
	b.Run("cached", func(b *testing.B) { benchCheckDemo(b, 0) })
	b.Run("uncached", func(b *testing.B) { benchCheckDemo(b, -1) })
}

func benchCheckDemo(b *testing.B, cache int) {
	e, secret := testEngine(b, func(o *Options) { o.CacheSize = cache })
	tok, err := identity.SignHS256(secret, "bob@contoso.example", "", "", time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	req := &Request{Method: "GET", Path: "/api/v1/customers/contoso/vbr-jobs", Authorization: "Bearer " + tok}
	if r := e.Check(context.Background(), req); !r.Allowed {
		b.Fatal(r.Reason)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Check(context.Background(), req)
	}
}

func mustToken(tb testing.TB, secret, user string) string {
	tb.Helper()
	tok, err := identity.SignHS256(secret, user, "", "", time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return "Bearer " + tok
}

func TestNoSnapshotFailsClosed(t *testing.T) {
	e := New(Options{Source: Dirs{Data: t.TempDir(), Policies: t.TempDir()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	res := e.Check(context.Background(), &Request{Method: "GET", Path: "/api/v1/customers/contoso/users"})
	if res.Allowed || res.Status != 503 || res.Reason != "internal_error" {
		t.Fatalf("got %+v, want 503 internal_error", res.Decision)
	}
	if err := e.Reload(context.Background()); err == nil {
		t.Fatal("reload of empty dirs succeeded")
	}
	if st := e.Status(); st.Ready || st.LastError == "" {
		t.Errorf("status %+v", st)
	}
}

// TestSwap: a good reload publishes a new snapshot (and a new, empty
// decision cache: no stale answer survives it); a bad one keeps the old.
func TestSwap(t *testing.T) {
	data := testdir.Copy(t, "../../data")
	e, secret := testEngine(t, func(o *Options) { o.Source = Dirs{Data: data, Policies: "../../policies"} })
	req := &Request{Method: "GET", Path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs", Authorization: mustToken(t, secret, "bob@contoso.example")}
	ctx := context.Background()
	first := e.Snapshot()
	for range 2 { // the second answer comes from the cache
		if r := e.Check(ctx, req); r.Reason != "location_forbidden" || r.Revision != first.Revision {
			t.Fatalf("before: %+v", r)
		}
	}

	users := filepath.Join(data, "users.yaml")
	src, _ := os.ReadFile(users)
	if err := os.WriteFile(users, []byte(strings.Replace(string(src), "locations: [hq]", "locations: [hq, branch-1]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	second := e.Snapshot()
	if second == first || second.Revision == first.Revision {
		t.Fatal("good reload did not publish a new snapshot")
	}
	if r := e.Check(ctx, req); !r.Allowed || r.Revision != second.Revision {
		t.Fatalf("after good reload: %+v (a stale cached deny?)", r)
	}

	if err := os.WriteFile(users, []byte("users: [not, a, map]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(ctx); err == nil {
		t.Fatal("bad reload succeeded")
	}
	if e.Snapshot() != second {
		t.Fatal("bad reload replaced the snapshot")
	}
	if r := e.Check(ctx, req); !r.Allowed {
		t.Fatalf("after bad reload: %+v", r)
	}
	if st := e.Status(); !strings.Contains(st.LastError, "users.yaml") || st.Revision != second.Revision {
		t.Errorf("status %+v", st)
	}
}

// TestCacheIsExact: the cached answer equals the evaluated one for every
// demo request, including the per-user headers (the key has the subject).
func TestCacheIsExact(t *testing.T) {
	cachedE, secret := testEngine(t)
	plain, _ := testEngine(t, func(o *Options) { o.CacheSize = -1 })
	ctx := context.Background()
	users := []string{"alice@contoso.example", "bob@contoso.example", "carol@contoso.example", "erin@contoso.example", "owner@acme.example", ""}
	paths := []string{"/api/v1/customers/contoso/users", "/api/v1/customers/contoso/vbr-jobs?page=2", "/api/v1/customers/contoso/vbr-jobs?page=3",
		"/api/v1/customers/contoso/protected-computers", "/api/v1/customers/contoso-paris/summary", "/api/v1/customers/contoso/users/alice%40contoso.example"}
	for round := range 2 {
		for _, u := range users {
			for _, p := range paths {
				for _, m := range []string{"GET", "PUT"} {
					req := &Request{Method: m, Path: p}
					if u != "" {
						req.Authorization = mustToken(t, secret, u)
					}
					got, want := cachedE.Check(ctx, req), plain.Check(ctx, req)
					if got.Allowed != want.Allowed || got.Status != want.Status || got.Reason != want.Reason ||
						fmt.Sprint(got.Headers) != fmt.Sprint(want.Headers) || got.User != want.User || got.Customer != want.Customer {
						t.Errorf("round %d %s %s %s: cached %+v, evaluated %+v", round, u, m, p, got, want)
					}
				}
			}
		}
	}
}

func TestDryRun(t *testing.T) {
	e, secret := testEngine(t, func(o *Options) { o.DryRun = true })
	var seen Result
	e.opts.Observer = observerFunc(func(r *Result) { seen = *r })
	req := &Request{Method: "GET", Path: "/api/v1/customers/northwind/users", Authorization: mustToken(t, secret, "alice@contoso.example")}
	res := e.Check(context.Background(), req)
	if !res.Allowed || res.Status != 200 || !res.DryRun || res.Denied.Reason != "outside_tenant" {
		t.Fatalf("dry run: %+v", res)
	}
	if v, _ := res.Header("x-tenantgate-dry-run-deny"); v != "outside_tenant" {
		t.Errorf("dry-run header %q", v)
	}
	if _, ok := res.Header("x-tenantgate-user"); ok {
		t.Error("a dry-run allow must not vouch for the user")
	}
	if !seen.DryRun || seen.Denied.Reason != "outside_tenant" {
		t.Errorf("observer saw %+v", seen)
	}
	// An allow stays an ordinary allow.
	req.Path = "/api/v1/customers/contoso/users"
	if res := e.Check(context.Background(), req); !res.Allowed || res.DryRun {
		t.Fatalf("allow in dry run: %+v", res)
	}
}

type observerFunc func(*Result)

func (f observerFunc) ObserveDecision(_ *Request, r *Result, _ time.Duration) { f(r) }
func (f observerFunc) ObserveReload(*Snapshot, error)                         {}

func (c *decisionCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

// TestCacheBounds: anonymous requests and overlong paths are decided every
// time, never remembered, so they can neither pin memory nor evict real
// users' answers; the cache never holds more than its bound.
func TestCacheBounds(t *testing.T) {
	e, secret := testEngine(t, func(o *Options) { o.CacheSize = 128 })
	ctx := context.Background()
	for i := range 50 {
		e.Check(ctx, &Request{Method: "GET", Path: fmt.Sprintf("/api/v1/customers/contoso/users/%d", i)})
	}
	long := "/api/v1/customers/contoso/users/" + strings.Repeat("a", maxCachedPath)
	alice := mustToken(t, secret, "alice@contoso.example")
	e.Check(ctx, &Request{Method: "GET", Path: long, Authorization: alice})
	if n := e.Snapshot().cache.len(); n != 0 {
		t.Fatalf("%d entries after anonymous and overlong requests, want 0", n)
	}
	for i := range 1000 {
		e.Check(ctx, &Request{Method: "GET", Path: fmt.Sprintf("/api/v1/customers/contoso/users/u%d", i), Authorization: alice})
	}
	if n := e.Snapshot().cache.len(); n == 0 || n > 128 {
		t.Fatalf("%d entries, want 1..128", n)
	}
}

// TestBuildHook: the program's hook brackets every reload, and is told
// whether a snapshot was published (a failed reload publishes none).
func TestBuildHook(t *testing.T) {
	data := testdir.Copy(t, "../../data")
	var calls []string
	hook := func() func(bool) {
		calls = append(calls, "start")
		return func(published bool) { calls = append(calls, fmt.Sprint("done ", published)) }
	}
	e, _ := testEngine(t, func(o *Options) {
		o.Source = Dirs{Data: data, Policies: "../../policies"}
		o.BuildHook = hook
	})
	if err := os.WriteFile(filepath.Join(data, "users.yaml"), []byte("users: [not, a, map]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err == nil {
		t.Fatal("bad reload succeeded")
	}
	if got := strings.Join(calls, ", "); got != "start, done true, start, done false" {
		t.Errorf("hook calls: %s", got)
	}
}

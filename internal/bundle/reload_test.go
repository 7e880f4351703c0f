package bundle_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/server"

	"github.com/tenantgate/tenantgate/internal/bundle"
)

// serve runs a real server on loopback whose watcher reloads eng from src.
func serve(t *testing.T, eng *engine.Engine, src engine.Source) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- server.Run(ctx, server.Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Engine: eng, Logger: quietLogger(),
			Watch: src.Watched(), Debounce: 20 * time.Millisecond,
			Ready: func(server.Addrs) { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
}

// waitFor polls cond for up to 20 s: generous, for a loaded 2-core machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBundleReplacedByRenameHotReloads(t *testing.T) {
	k := signingKey()
	dir := t.TempDir()
	path := filepath.Join(dir, "tenantgate.tar.gz")
	copyFile(t, signedRepoBundle(t), path)

	// The next bundle gives bob the branch-1 location.
	data := t.TempDir()
	for _, name := range []string{"customers.yaml", "users.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../data", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "users.yaml" {
			old := "    role: company-administrator\n    locations: [hq]"
			if !strings.Contains(string(b), old) {
				t.Fatalf("data/users.yaml no longer has %q", old)
			}
			b = []byte(strings.Replace(string(b), old, "    role: company-administrator\n    locations: [hq, branch-1]", 1))
		}
		writeFile(t, filepath.Join(data, name), string(b))
	}
	next := writeBundle(t, filepath.Join(t.TempDir(), "next.tar.gz"), assembled(t, data), &k, bundle.DefaultKeyID)
	// A forged copy of next that would give ivan (invoice-auditor) write access to configuration.
	forged := rewrite(t, next, replaceIn(t, "policies/tables.rego",
		`"subtenant-user": "none", "invoice-auditor": "none"}`, `"subtenant-user": "none", "invoice-auditor": "full"}`), nil)

	src := newSource(t, bundle.Options{Path: path, VerificationKey: publicKeyFile(t, k)})
	eng, check := testEngine(t, src)
	serve(t, eng, src)
	const branch = "/api/v1/customers/contoso/locations/branch-1/vbr-jobs"
	if r := check("bob@contoso.example", "GET", branch); r.Reason != "location_forbidden" {
		t.Fatalf("before: bob on branch-1: %s", r.Reason)
	}
	first := eng.Snapshot()

	copyFile(t, next, path)
	waitFor(t, "the new bundle to serve", func() bool { return eng.Snapshot() != first })
	if r := check("bob@contoso.example", "GET", branch); !r.Allowed {
		t.Errorf("after: bob on branch-1: %s", r.Reason)
	}
	second := eng.Snapshot()
	if st := eng.Status(); st.LastError != "" {
		t.Fatalf("last reload error %q", st.LastError)
	}

	copyFile(t, forged, path)
	waitFor(t, "the forged bundle to be refused", func() bool { return eng.Status().LastError != "" })
	st := eng.Status()
	if want := "bundle " + path + ": signature verification failed: policies/tables.rego: digest mismatch"; !strings.HasPrefix(st.LastError, want) {
		t.Errorf("last reload error %q, want it to start with %q", st.LastError, want)
	}
	if eng.Snapshot() != second {
		t.Error("a forged bundle replaced the snapshot")
	}
	if r := check("ivan@contoso.example", "PUT", "/api/v1/customers/contoso/company-info"); r.Allowed {
		t.Error("the forged permission is in force")
	}
}

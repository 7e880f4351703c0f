package engine

import (
	"context"
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

// conflictRego adds a second decision for users of one role. It compiles,
// but evaluating it for such a user is an eval_conflict_error: the policy
// and the data each pass alone, and only their combination fails.
func conflictRego(role string) string {
	return `package tenantgate.authz

# For the tests only: a second, different answer for one role.
decision := {"allowed": false, "status": 403, "reason": "conflict_probe", "headers": {}} if input.user.role == "` + role + `"
`
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sourcesEngine is an engine over copies of the demo data and policies.
func sourcesEngine(t *testing.T) (e *Engine, data, pols, secret string) {
	t.Helper()
	data, pols = testdir.Copy(t, "../../data"), testdir.Copy(t, "../../policies")
	e, secret = testEngine(t, func(o *Options) { o.Source = Dirs{Data: data, Policies: pols} })
	return e, data, pols, secret
}

// TestSourcesCompositionBlame: a new version of the data or of the
// policies that fails only together with the other is refused and blamed,
// and the other source's new version is published all the same.
func TestSourcesCompositionBlame(t *testing.T) {
	ctx := context.Background()
	bobBranch := func(e *Engine, secret string) string {
		return e.Check(ctx, &Request{Method: "GET", Path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs",
			Authorization: mustToken(t, secret, "bob@contoso.example")}).Reason
	}

	t.Run("new data blamed", func(t *testing.T) {
		e, data, pols, _ := sourcesEngine(t)
		// Invoice auditors conflict; the probe user (the first id,
		// admin@northwind.example) is none, so this policy loads.
		write(t, filepath.Join(pols, "conflict.rego"), conflictRego("invoice-auditor"))
		if err := e.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		good := e.Snapshot()
		// A new auditor who sorts first becomes the probe user.
		users := filepath.Join(data, "users.yaml")
		orig, _ := os.ReadFile(users)
		write(t, users, string(orig)+"  aaron@contoso.example:\n    customer: contoso\n    role: invoice-auditor\n")
		err := e.Reload(ctx)
		if err == nil || !strings.Contains(err.Error(), "eval_conflict_error") {
			t.Fatalf("reload: %v, want the conflict", err)
		}
		st := e.Status()
		if d := st.Sources[SourceData]; d.OK || !strings.Contains(d.LastError, "the new tenant data does not work with the policies in force") {
			t.Errorf("data: %+v", d)
		}
		if p := st.Sources[SourcePolicies]; !p.OK || p.LastError != "" {
			t.Errorf("policies: %+v, want OK: they did not change", p)
		}
		if e.Snapshot() != good || st.Revision != good.Revision {
			t.Error("the refused data replaced the snapshot")
		}
		write(t, users, string(orig))
		if err := e.Reload(ctx); err != nil {
			t.Fatalf("after removing aaron: %v", err)
		}
		if d := e.Status().Sources[SourceData]; !d.OK || d.LastError != "" {
			t.Errorf("data after the fix: %+v", d)
		}
	})

	t.Run("new policies blamed, new data published", func(t *testing.T) {
		e, data, pols, secret := sourcesEngine(t)
		good := e.Snapshot()
		// One reload sees both: a policy that conflicts for the probe
		// user's role, and a data edit that gives bob branch-1.
		write(t, filepath.Join(pols, "conflict.rego"), conflictRego("company-administrator"))
		users := filepath.Join(data, "users.yaml")
		orig, _ := os.ReadFile(users)
		write(t, users, strings.Replace(string(orig), "locations: [hq]", "locations: [hq, branch-1]", 1))
		if err := e.Reload(ctx); err == nil {
			t.Fatal("reload with a conflicting policy succeeded")
		}
		s := e.Snapshot()
		if s == good || s.Policy != good.Policy || s.Data == good.Data {
			t.Fatalf("published snapshot: new %t, same policy %t, same data %t; want the new data with the old policy",
				s != good, s.Policy == good.Policy, s.Data == good.Data)
		}
		if got := bobBranch(e, secret); got != "allowed" {
			t.Errorf("bob on branch-1: %s, want the new data's allowed", got)
		}
		st := e.Status()
		if p := st.Sources[SourcePolicies]; p.OK || !strings.Contains(p.LastError, "the new policies do not work with the tenant data") {
			t.Errorf("policies: %+v", p)
		}
		if d := st.Sources[SourceData]; !d.OK || d.LastError != "" {
			t.Errorf("data: %+v", d)
		}
	})
}

// TestSourcesStartFails: at start a source has no last good version, so any
// one failing publishes nothing (`serve` exits non-zero); the status names
// the failing source and only it.
func TestSourcesStartFails(t *testing.T) {
	tests := []struct {
		name, source, want string
		breakIt            func(t *testing.T, data, pols, secret string)
	}{
		{"data", SourceData, "users.yaml", func(t *testing.T, data, _, _ string) {
			write(t, filepath.Join(data, "users.yaml"), "users: [not, a, map]\n")
		}},
		{"policies", SourcePolicies, "authz.rego", func(t *testing.T, _, pols, _ string) {
			write(t, filepath.Join(pols, "authz.rego"), "package tenantgate.authz\n\nbroken if {\n")
		}},
		{"secret", SourceHS256Secret, "the secret is empty", func(t *testing.T, _, _, secret string) {
			write(t, secret, "\n")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, pols := testdir.Copy(t, "../../data"), testdir.Copy(t, "../../policies")
			secret := filepath.Join(t.TempDir(), "secret")
			write(t, secret, "0123456789abcdef0123456789abcdef\n")
			tc.breakIt(t, data, pols, secret)
			e := New(Options{
				Source:   Dirs{Data: data, Policies: pols},
				Identity: &identity.Config{HS256SecretFile: secret, Leeway: time.Minute},
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			err := e.Reload(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("first load: %v, want an error naming %q", err, tc.want)
			}
			st := e.Status()
			if st.Ready || e.Snapshot() != nil {
				t.Fatal("a snapshot was published without every source")
			}
			for name, s := range st.Sources {
				if failing := name == tc.source; s.OK == failing {
					t.Errorf("source %s: %+v", name, s)
				}
			}
			if len(st.Sources) != 3 {
				t.Errorf("sources %v, want data, policies, hs256_secret", st.Sources)
			}
		})
	}
}

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

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

func withEvaluator(name string) func(*Options) {
	return func(o *Options) { o.Evaluator = name; o.CacheSize = -1 }
}

func TestEvaluatorIRIsChosenAfterSelfCheck(t *testing.T) {
	e, _ := testEngine(t, withEvaluator(EvaluatorIR))
	st := e.Status().Evaluator
	if st == nil || st.InUse != EvaluatorIR || st.Declined != "" {
		t.Fatalf("evaluator status %+v, want ir in use", st)
	}
	if st.SelfCheckInputs < 100 || st.SelfCheckMismatches != 0 {
		t.Fatalf("self-check %d inputs, %d mismatches; want at least 100 and none", st.SelfCheckInputs, st.SelfCheckMismatches)
	}
}

func TestEvaluatorRegoOnRequest(t *testing.T) {
	e, _ := testEngine(t, withEvaluator(EvaluatorRego))
	if st := e.Status().Evaluator; st == nil || st.InUse != EvaluatorRego || st.SelfCheckInputs != 0 {
		t.Fatalf("evaluator status %+v, want rego without a self-check", st)
	}
}

// TestEvaluatorDeclinedPolicyFallsBack: a policy the IR evaluator does not
// run (here: a builtin outside its list) is served by OPA's evaluator, with
// the reason in the status, and still decides.
func TestEvaluatorDeclinedPolicyFallsBack(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"authz.rego", "tables.rego"} {
		b, err := os.ReadFile(filepath.Join("../../policies", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "authz.rego" {
			old := "path_is_valid if input.path.valid == true"
			if !strings.Contains(string(b), old) {
				t.Fatalf("authz.rego no longer has %q: update this test", old)
			}
			b = []byte(strings.Replace(string(b), old, "path_is_valid if {\n\tinput.path.valid == true\n\tregex.match(`^[A-Z]+$`, input.method)\n}", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, secret := testEngine(t, withEvaluator(EvaluatorIR), func(o *Options) {
		o.Source = Dirs{Data: "../../data", Policies: dir}
	})
	st := e.Status().Evaluator
	if st.InUse != EvaluatorRego || !strings.Contains(st.Declined, "regex.match") {
		t.Fatalf("evaluator status %+v, want rego with the decline naming regex.match", st)
	}
	req := &Request{Method: "GET", Path: "/api/v1/customers/contoso/vbr-jobs", Authorization: mustToken(t, secret, "bob@contoso.example")}
	if r := e.Check(context.Background(), req); !r.Allowed {
		t.Fatalf("got %+v, want allowed", r.Decision)
	}
}

func TestEvaluatorIRDeadlineFailsClosed(t *testing.T) {
	e, secret := testEngine(t, withEvaluator(EvaluatorIR), func(o *Options) { o.Timeout = time.Nanosecond })
	req := &Request{Method: "GET", Path: "/api/v1/customers/contoso/vbr-jobs", Authorization: mustToken(t, secret, "bob@contoso.example")}
	if r := e.Check(context.Background(), req); r.Allowed || r.Status != 503 || r.Reason != "internal_error" {
		t.Fatalf("got %+v, want 503 internal_error", r.Decision)
	}
}

// TestEvaluatorsAgreeOnBenchMixes runs every request of the small and
// medium benchmark mixes through two engines, one per evaluator, end to end
// (token, the engine's own input builder, decision): same results.
func TestEvaluatorsAgreeOnBenchMixes(t *testing.T) {
	for _, size := range []tenantgen.Size{tenantgen.Small, tenantgen.Medium} {
		t.Run(size.Name, func(t *testing.T) {
			if size == tenantgen.Medium && testing.Short() {
				t.Skip("medium in -short mode")
			}
			d, err := tenantgen.Shared(size)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := d.WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			src := func(o *Options) { o.Source = Dirs{Data: dir, Policies: "../../policies"} }
			ir, secret := testEngine(t, withEvaluator(EvaluatorIR), src)
			rg, _ := testEngine(t, withEvaluator(EvaluatorRego), src, func(o *Options) {
				o.Identity = &identity.Config{HS256SecretFile: secret, Leeway: time.Minute}
			})
			if st := ir.Status().Evaluator; st.InUse != EvaluatorIR {
				t.Fatalf("evaluator status %+v, want ir", st)
			}
			tokens := map[string]string{}
			for _, r := range d.Requests {
				req := &Request{Method: r.Method, Path: r.Path}
				if r.User != "" {
					if tokens[r.User] == "" {
						tokens[r.User] = mustToken(t, secret, r.User)
					}
					req.Authorization = tokens[r.User]
				}
				a, b := ir.Check(context.Background(), req), rg.Check(context.Background(), req)
				a.Revision, b.Revision = "", ""
				if !sameDecision(a.Decision, b.Decision) || a.User != b.User || a.Customer != b.Customer {
					t.Fatalf("%s %s as %q: ir %+v, rego %+v", r.Method, r.Path, r.User, a, b)
				}
				if a.Reason != r.Reason {
					t.Errorf("%s %s as %q: %s, the generator expects %s", r.Method, r.Path, r.User, a.Reason, r.Reason)
				}
			}
		})
	}
}

// BenchmarkCheckEvaluator measures a whole Check (token, input, decision)
// with the cache off, cycling through each size's benchmark mix, for each
// evaluator.
func BenchmarkCheckEvaluator(b *testing.B) {
	for _, size := range tenantgen.Sizes() {
		src, ident := benchSource(b, size)
		d, err := tenantgen.Shared(size)
		if err != nil {
			b.Fatal(err)
		}
		reqs := make([]*Request, len(d.Requests))
		tokens := map[string]string{}
		for i, r := range d.Requests {
			reqs[i] = &Request{Method: r.Method, Path: r.Path}
			if r.User != "" {
				if tokens[r.User] == "" {
					tokens[r.User] = mustToken(b, ident.HS256SecretFile, r.User)
				}
				reqs[i].Authorization = tokens[r.User]
			}
		}
		for _, ev := range []string{EvaluatorIR, EvaluatorRego} {
			b.Run("size="+size.Name+"/evaluator="+ev, func(b *testing.B) {
				e := New(Options{Source: src, Identity: ident, CacheSize: -1, Evaluator: ev,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err := e.Reload(context.Background()); err != nil {
					b.Fatal(err)
				}
				if got := e.Status().Evaluator.InUse; got != ev {
					b.Fatalf("evaluator %s in use, want %s", got, ev)
				}
				for _, r := range reqs { // warm the token cache, as a steady state has it
					e.Check(context.Background(), r)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					e.Check(context.Background(), reqs[i%len(reqs)])
					i++
				}
			})
		}
	}
}

// TestEvaluatorReusedWhileThePolicyIsUnchanged: a data-only reload keeps the
// IR evaluator its policy was checked with (no second plan, no second
// self-check); a policy edit plans and checks afresh.
func TestEvaluatorReusedWhileThePolicyIsUnchanged(t *testing.T) {
	data := testdir.Copy(t, "../../data")
	pols := testdir.Copy(t, "../../policies")
	e, _ := testEngine(t, withEvaluator(EvaluatorIR), func(o *Options) { o.Source = Dirs{Data: data, Policies: pols} })
	first := e.Snapshot()
	if first.eval.ir == nil {
		t.Fatalf("evaluator %+v, want ir", first.Evaluator())
	}
	users := filepath.Join(data, "users.yaml")
	b, _ := os.ReadFile(users)
	if err := os.WriteFile(users, []byte(strings.Replace(string(b), "locations: [hq]", "locations: [hq, branch-1]", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := e.Snapshot()
	if second == first || second.eval.ir != first.eval.ir {
		t.Errorf("a data-only reload planned the policy again (evaluator %p, was %p)", second.eval.ir, first.eval.ir)
	}
	authz := filepath.Join(pols, "authz.rego")
	b, _ = os.ReadFile(authz)
	if err := os.WriteFile(authz, append(b, []byte("\n# an edit\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	third := e.Snapshot()
	if third.eval.ir == nil || third.eval.ir == second.eval.ir || third.Evaluator().SelfCheckInputs == 0 {
		t.Errorf("a policy edit reused the old evaluator: %+v", third.Evaluator())
	}
}

// TestBuilderChoosesTheEvaluatorOnce: the one-shot commands' builder gives
// a snapshot the evaluator asked for, after the self-check, and a second
// snapshot of the same policy (diff's other version) reuses that choice
// instead of planning and self-checking again.
func TestBuilderChoosesTheEvaluatorOnce(t *testing.T) {
	ctx := context.Background()
	src := Dirs{Data: "../../data", Policies: "../../policies"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b := &Builder{Evaluator: EvaluatorIR, Logger: quiet}
	s1, err := b.Build(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Build(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []*Snapshot{s1, s2} {
		if st := s.Evaluator(); st.InUse != EvaluatorIR || st.SelfCheckInputs < 100 || st.SelfCheckMismatches != 0 {
			t.Fatalf("snapshot %d: evaluator %+v, want ir after a clean self-check", i+1, st)
		}
	}
	if s1.eval.ir != s2.eval.ir {
		t.Error("the second snapshot of one policy planned the IR evaluator again")
	}
	res, err := s2.DecideAs(ctx, "bob@contoso.example", &Request{Method: "GET", Path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs"})
	if err != nil || res.Reason != "location_forbidden" {
		t.Fatalf("decide: %+v, %v", res.Decision, err)
	}

	s3, err := (&Builder{Evaluator: EvaluatorRego, Logger: quiet}).Build(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := s3.Evaluator(); st.InUse != EvaluatorRego || st.SelfCheckInputs != 0 {
		t.Fatalf("rego asked for: %+v", st)
	}
}

package ireval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/tenantgate/tenantgate/internal/input"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

const query = policy.DecisionQuery

// pair is the same policy prepared twice: OPA's evaluator, configured as
// internal/policy configures it, and the IR evaluator.
type pair struct {
	rego  rego.PreparedEvalQuery
	txn   storage.Transaction
	ir    *Evaluator
	isRes func(string) bool
}

func readPolicies(tb testing.TB, dir string) []Module {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.rego"))
	if err != nil {
		tb.Fatal(err)
	}
	var mods []Module
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			tb.Fatal(err)
		}
		mods = append(mods, Module{Name: n, Source: string(b)})
	}
	return mods
}

var (
	sharedOnce sync.Once
	sharedPair *pair
	sharedErr  error
)

// shippedPair prepares the shipped policies once per test binary.
func shippedPair(tb testing.TB) *pair {
	tb.Helper()
	sharedOnce.Do(func() {
		mods := readPolicies(tb, "../../policies")
		sharedPair, sharedErr = newPair(mods)
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return sharedPair
}

func newPair(mods []Module) (*pair, error) {
	ctx := context.Background()
	ev, err := Compile(ctx, query, mods, nil)
	if err != nil {
		return nil, err
	}
	p, err := newRegoQuery(mods)
	if err != nil {
		return nil, err
	}
	p.ir = ev
	return p, nil
}

// newRegoQuery mirrors policy.Compile: RegoV1, an empty store read through
// one long-lived transaction.
func newRegoQuery(mods []Module) (*pair, error) { return newRegoQueryFor(query, mods) }

func newRegoQueryFor(query string, mods []Module) (*pair, error) {
	ctx := context.Background()
	parsed := map[string]*ast.Module{}
	var files []policy.File
	for _, m := range mods {
		pm, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, err
		}
		parsed[m.Name] = pm
		files = append(files, policy.File{Name: m.Name, Content: []byte(m.Source)})
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(parsed); compiler.Failed() {
		return nil, compiler.Errors
	}
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	pq, err := rego.New(rego.Query(query), rego.Compiler(compiler), rego.Store(store),
		rego.Transaction(txn), rego.SetRegoVersion(ast.RegoV1)).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	p := &pair{rego: pq, txn: txn, isRes: func(string) bool { return false }}
	// The catalog, for route parsing, as the engine gets it.
	if pol, err := policy.Compile(ctx, files); err == nil {
		p.isRes = pol.IsResource
	}
	return p, nil
}

func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// evalRego returns the decision term OPA's evaluator gives (nil when
// undefined), or its error.
func (p *pair) evalRego(ctx context.Context, input ast.Value) (*ast.Term, error) {
	rs, err := p.rego.Eval(ctx, rego.EvalParsedInput(input), rego.EvalTransaction(p.txn),
		rego.EvalGenerateJSON(keepTerm))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, nil
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, errMulti
	}
	return rs[0].Expressions[0].Value.(*ast.Term), nil
}

var errMulti = &DeclineError{Func: "test", Reason: "several results"}

// outcome is what a differential test compares: the whole decision term,
// undefined, or "an error".
func outcome(t *ast.Term, err error) string {
	switch {
	case err != nil:
		return "error"
	case t == nil:
		return "undefined"
	default:
		return t.String()
	}
}

// diff evaluates input with both and reports the two outcomes when they
// differ ("" when equal), and the decision's reason when there is one.
func (p *pair) diff(tb testing.TB, input ast.Value) (mismatch, reason string) {
	tb.Helper()
	ctx := context.Background()
	want, werr := p.evalRego(ctx, input)
	got, gerr := p.ir.Eval(ctx, input)
	w, g := outcome(want, werr), outcome(got, gerr)
	if werr == nil && gerr == nil && want != nil && got != nil && want.Value.Compare(got.Value) == 0 {
		w, g = "", ""
	}
	if w != g {
		return "rego: " + w + "\n  ir: " + g, ""
	}
	reason = "<" + w + ">"
	if obj, ok := termValue[ast.Object](want); ok {
		if r := obj.Get(ast.StringTerm("reason")); r != nil {
			reason = r.String()
		}
	}
	return "", reason
}

// buildInput is the engine's own input builder (internal/input), so the
// two evaluators are compared on exactly what production evaluates.
func buildInput(d *tenant.Data, isRes func(string) bool, sub, method, path string) ast.Value {
	in, _ := input.Build(d, isRes, sub, method, path)
	return in
}

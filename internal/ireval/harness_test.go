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

	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/route"
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

// Keys of the input document, as internal/engine/input.go builds it.
var (
	kMethod    = ast.StringTerm("method")
	kPath      = ast.StringTerm("path")
	kValid     = ast.StringTerm("valid")
	kSubject   = ast.StringTerm("subject")
	kUser      = ast.StringTerm("user")
	kID        = ast.StringTerm("id")
	kRole      = ast.StringTerm("role")
	kDisabled  = ast.StringTerm("disabled")
	kLocations = ast.StringTerm("locations")
	kComputers = ast.StringTerm("computers")
	kCustomer  = ast.StringTerm("customer")
	kType      = ast.StringTerm("type")
	kLineage   = ast.StringTerm("lineage")
	kSuspended = ast.StringTerm("suspended")
	kRoute     = ast.StringTerm("route")
	kResource  = ast.StringTerm("resource")
	kLocation  = ast.StringTerm("location")
	kComputer  = ast.StringTerm("computer")
	kTarget    = ast.StringTerm("target")
	kNamedUser = ast.StringTerm("named_user")
)

// buildInput mirrors Snapshot.DecideAs in internal/engine/input.go (the
// engine's own builder is unexported; the engine's self-check compares the
// two evaluators on its real inputs).
func buildInput(d *tenant.Data, isRes func(string) bool, sub, method, path string) ast.Value {
	var buf [16]string
	segs, perr := route.Segments(path, buf[:0])
	var rt route.Route
	routed := false
	if perr == nil {
		rt, routed = route.Parse(segs, isRes)
	}
	input := ast.NewObject()
	input.Insert(kMethod, ast.StringTerm(method))
	input.Insert(kPath, ast.NewTerm(ast.NewObject(ast.Item(kValid, ast.BooleanTerm(perr == nil)))))
	if sub != "" {
		input.Insert(kSubject, ast.StringTerm(sub))
		if u := d.Users[sub]; u != nil {
			o := ast.NewObject(
				ast.Item(kID, ast.StringTerm(u.ID)),
				ast.Item(kRole, ast.StringTerm(u.Role)),
				ast.Item(kDisabled, ast.BooleanTerm(u.Disabled)),
				ast.Item(kCustomer, customerTerm(d.Customers[u.Customer])),
			)
			if len(u.Locations) > 0 {
				o.Insert(kLocations, stringArray(u.Locations))
			}
			if len(u.Computers) > 0 {
				o.Insert(kComputers, stringArray(u.Computers))
			}
			input.Insert(kUser, ast.NewTerm(o))
		}
	}
	if routed {
		r := ast.NewObject(ast.Item(kCustomer, ast.StringTerm(rt.Customer)), ast.Item(kResource, ast.StringTerm(rt.Resource)))
		if rt.HasLocation {
			r.Insert(kLocation, ast.StringTerm(rt.Location))
		}
		if rt.HasComputer {
			r.Insert(kComputer, ast.StringTerm(rt.Computer))
		}
		if rt.HasID {
			r.Insert(kID, ast.StringTerm(rt.ID))
			if nu := d.Users[rt.ID]; nu != nil {
				input.Insert(kNamedUser, ast.NewTerm(ast.NewObject(
					ast.Item(kID, ast.StringTerm(nu.ID)),
					ast.Item(kRole, ast.StringTerm(nu.Role)),
					ast.Item(kCustomer, customerTerm(d.Customers[nu.Customer])),
				)))
			}
		}
		input.Insert(kRoute, ast.NewTerm(r))
		if c := d.Customers[rt.Customer]; c != nil {
			input.Insert(kTarget, customerTerm(c))
		}
	}
	return input
}

func customerTerm(c *tenant.Customer) *ast.Term {
	if c == nil {
		return ast.NullTerm()
	}
	return ast.NewTerm(ast.NewObject(
		ast.Item(kID, ast.StringTerm(c.ID)),
		ast.Item(kType, ast.StringTerm(c.Type)),
		ast.Item(kLineage, stringArray(c.Lineage)),
		ast.Item(kSuspended, stringArray(c.Suspended)),
	))
}

func stringArray(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

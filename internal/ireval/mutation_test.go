package ireval

import (
	"slices"
	"sort"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// alternatives replace a field's value: every JSON type, the empty ones,
// and values the policy compares against (roles, levels, ids).
var alternatives = []*ast.Term{
	ast.NullTerm(), ast.BooleanTerm(true), ast.BooleanTerm(false),
	ast.IntNumberTerm(0), ast.IntNumberTerm(401), ast.FloatNumberTerm(2.5),
	ast.StringTerm(""), ast.StringTerm("x"), ast.StringTerm("company-owner"), ast.StringTerm("GET"),
	ast.ArrayTerm(), ast.ArrayTerm(ast.StringTerm("x")), ast.ArrayTerm(ast.IntNumberTerm(1)),
	ast.ObjectTerm(), ast.ObjectTerm(ast.Item(ast.StringTerm("id"), ast.StringTerm("x"))),
	ast.SetTerm(ast.StringTerm("x")),
}

// mutants returns the input with one change each: every field (at any
// depth) removed, and every value (array elements too) replaced by each
// alternative.
func mutants(in ast.Value) []ast.Value {
	var out []ast.Value
	var walk func(v ast.Value, rebuild func(ast.Value) ast.Value, remove func() ast.Value)
	walk = func(v ast.Value, rebuild func(ast.Value) ast.Value, remove func() ast.Value) {
		if remove != nil {
			out = append(out, remove())
		}
		for _, alt := range alternatives {
			if alt.Value.Compare(v) != 0 {
				out = append(out, rebuild(alt.Value))
			}
		}
		switch x := v.(type) {
		case ast.Object:
			for _, k := range x.Keys() {
				k := k
				with := func(nv ast.Value) ast.Object {
					c := x.Copy()
					c.Insert(k, ast.NewTerm(nv))
					return c
				}
				without := func() ast.Object {
					c := ast.NewObject()
					x.Foreach(func(kk, vv *ast.Term) {
						if kk.Value.Compare(k.Value) != 0 {
							c.Insert(kk, vv)
						}
					})
					return c
				}
				walk(x.Get(k).Value,
					func(nv ast.Value) ast.Value { return rebuild(with(nv)) },
					func() ast.Value { return rebuild(without()) })
			}
		case *ast.Array:
			for i := 0; i < x.Len(); i++ {
				i := i
				with := func(nv ast.Value) ast.Value {
					c := x.Copy()
					c.Set(i, ast.NewTerm(nv))
					return c
				}
				without := func() ast.Value {
					var ts []*ast.Term
					for j := 0; j < x.Len(); j++ {
						if j != i {
							ts = append(ts, x.Elem(j))
						}
					}
					return ast.NewArray(ts...)
				}
				walk(x.Elem(i).Value,
					func(nv ast.Value) ast.Value { return rebuild(with(nv)) },
					func() ast.Value { return rebuild(without()) })
			}
		}
	}
	walk(in, func(v ast.Value) ast.Value { return v }, nil)
	return out
}

// mutationBases are representative inputs: the demo tree's users on the
// requests that reach each check, and a sample of the small benchmark mix.
func mutationBases(t *testing.T, p *pair, every int) []ast.Value {
	t.Helper()
	demo, err := tenant.LoadDir("../../data")
	if err != nil {
		t.Fatal(err)
	}
	var bases []ast.Value
	for _, r := range []struct{ sub, method, path string }{
		{"bob@contoso.example", "GET", "/api/v1/customers/contoso/vbr-jobs"},
		{"bob@contoso.example", "POST", "/api/v1/customers/contoso/users/alice@contoso.example"},
		{"", "GET", "/api/v1/customers/contoso/vbr-jobs"},
		{"bob@contoso.example", "GET", "/api/v1/customers/contoso/%2e%2e/x"},
	} {
		bases = append(bases, buildInput(demo, p.isRes, r.sub, r.method, r.path))
	}
	for _, u := range demo.Users {
		for _, path := range []string{
			"/api/v1/customers/" + u.Customer + "/users/" + u.ID,
			"/api/v1/customers/" + u.Customer + "/agent-jobs",
			"/api/v1/customers/" + u.Customer + "/computers/pc-1/agent-jobs",
			"/api/v1/customers/" + u.Customer + "/locations/hq/vbr-jobs",
			"/api/v1/customers/" + u.Customer + "/quick-installation",
		} {
			for _, m := range []string{"GET", "PUT"} {
				bases = append(bases, buildInput(demo, p.isRes, u.ID, m, path))
			}
		}
	}
	d, err := tenantgen.Shared(tenantgen.Small)
	if err != nil {
		t.Fatal(err)
	}
	data := loadDataset(t, d)
	for i, r := range d.Requests {
		if i%every == 0 {
			bases = append(bases, buildInput(data, p.isRes, r.User, r.Method, r.Path))
		}
	}
	return bases
}

// TestDifferentialMutations: one-field mutations of representative inputs
// (fields missing, of the wrong type, empty, foreign values) decide the
// same under both evaluators, and between them reach every reason code and
// the policy's fail-closed default.
func TestDifferentialMutations(t *testing.T) {
	p := shippedPair(t)
	every := 20
	if testing.Short() {
		every = 100
	}
	stride := 1 // mutants per base: all, or every stride-th under -race
	if raceEnabled {
		stride = 20 // the full corpus runs in make test's pass without -race
	}
	bases := mutationBases(t, p, every)
	reasons := map[string]int{}
	n := 0
	for _, base := range bases {
		for i, in := range append([]ast.Value{base}, mutants(base)...) {
			if i%stride != 0 {
				continue
			}
			mis, reason := p.diff(t, in)
			if mis != "" {
				t.Fatalf("input %v:\n  %s", in, mis)
			}
			reasons[reason]++
			n++
		}
	}
	var got []string
	for r := range reasons {
		got = append(got, r)
	}
	sort.Strings(got)
	t.Logf("%d bases, %d inputs equal; outcomes %v", len(bases), n, reasons)
	for _, want := range []string{
		decision.ReasonAllowed, decision.ReasonBadPath, decision.ReasonUnauthenticated, decision.ReasonUnknownUser,
		decision.ReasonUserDisabled, decision.ReasonCustomerDisabled, decision.ReasonMethodNotAllowed,
		decision.ReasonNoRoute, decision.ReasonOutsideTenant, decision.ReasonModuleUnavailable,
		decision.ReasonRoleForbids, decision.ReasonLocationForbidden, decision.ReasonComputerForbidden,
		decision.ReasonInternalError,
	} {
		if !slices.Contains(got, `"`+want+`"`) {
			t.Errorf("no input reached %q", want)
		}
	}
}

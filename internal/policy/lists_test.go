package policy

import (
	"context"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// TestGoListsEqualThePolicy: the customer types, roles and reason codes are
// declared twice, in Go (validation, metric labels) and in the policy
// (tables, the else chain). A policy edit that adds, renames or reorders
// one must change Go too, or the loader would accept a type the policy does
// not know and the metrics would miss a reason.
func TestGoListsEqualThePolicy(t *testing.T) {
	files := repoPolicies(t)
	p, err := Compile(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ls []Label) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.ID)
		}
		return out
	}
	if got := ids(p.Tables().CustomerTypes); !slices.Equal(got, tenant.Types) {
		t.Errorf("policy customer_types %v, Go tenant.Types %v (rank order)", got, tenant.Types)
	}
	if got := ids(p.Tables().Roles); !slices.Equal(got, tenant.Roles) {
		t.Errorf("policy roles %v, Go tenant.Roles %v", got, tenant.Roles)
	}

	policyReasons := reasonsOf(t, files)
	goReasons := slices.Sorted(slices.Values(decision.Reasons))
	if !slices.Equal(policyReasons, goReasons) {
		t.Errorf("policy reasons %v, Go decision.Reasons %v", policyReasons, goReasons)
	}
	for r := range p.Tables().Statuses {
		if !slices.Contains(goReasons, r) {
			t.Errorf("tables.statuses names %q, which is no reason code", r)
		}
	}
}

// reasonsOf collects, sorted, every string the authz package can give as a
// reason: the values of the `reason` rule and its else branches, and the
// reason of the default decision.
func reasonsOf(t *testing.T, files []File) []string {
	t.Helper()
	set := map[string]bool{}
	for _, f := range files {
		m, err := ast.ParseModuleWithOpts(f.Name, string(f.Content), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range m.Rules {
			switch {
			case r.Head.Name.String() == "reason":
				for e := r; e != nil; e = e.Else {
					if s, ok := e.Head.Value.Value.(ast.String); ok {
						set[string(s)] = true
					}
				}
			case r.Default && r.Head.Name.String() == "decision":
				if obj, ok := r.Head.Value.Value.(ast.Object); ok {
					if s, ok := obj.Get(ast.StringTerm("reason")).Value.(ast.String); ok {
						set[string(s)] = true
					}
				}
			}
		}
	}
	if len(set) < 3 {
		t.Fatalf("found reasons %v: the policy's reason rule is no longer where this test looks", set)
	}
	return slices.Sorted(func(yield func(string) bool) {
		for r := range set {
			if !yield(r) {
				return
			}
		}
	})
}

package ireval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
)

// planTarget is the name of the rego target plugin through which OPA hands
// over its plan. rego has no public "plan this query" call; a target plugin
// is the public route: PrepareForEval plans the query with OPA's own planner
// (the one `opa build -t plan` uses) and passes the ir.Policy to the plugin.
const planTarget = "tenantgate-ir-plan"

var registerOnce sync.Once

type planCaptureKey struct{}

// planCapturer is the target plugin. It only records the plan handed to it
// (through the context, so concurrent plans do not mix) and is never used to
// evaluate anything.
type planCapturer struct{}

func (planCapturer) IsTarget(t string) bool { return t == planTarget }

func (planCapturer) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	dst, ok := ctx.Value(planCaptureKey{}).(**ir.Policy)
	if !ok {
		return nil, errors.New("ireval: plan target used outside ireval.Plan")
	}
	*dst = p
	return noEval{}, nil
}

type noEval struct{}

func (noEval) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("ireval: the plan target does not evaluate")
}

// Module is one Rego source file.
type Module struct {
	Name   string
	Source string
}

// Plan parses and compiles the modules the way the planner needs them (OPA
// v1 syntax, IR evaluation mode) and returns OPA's plan of query.
func Plan(ctx context.Context, query string, modules []Module, unsafe map[string]struct{}) (*ir.Policy, error) {
	registerOnce.Do(func() { rego.RegisterPlugin(planTarget, planCapturer{}) })

	modules = slices.Clone(modules)
	slices.SortFunc(modules, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	parsed := make(map[string]*ast.Module, len(modules))
	for _, m := range modules {
		pm, err := ast.ParseModuleWithOpts(m.Name, m.Source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("ireval: %w", err)
		}
		parsed[m.Name] = pm
	}
	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithEvalMode(ast.EvalModeIR).
		WithUnsafeBuiltins(unsafe)
	if compiler.Compile(parsed); compiler.Failed() {
		return nil, fmt.Errorf("ireval: %w", compiler.Errors)
	}
	var p *ir.Policy
	pctx := context.WithValue(ctx, planCaptureKey{}, &p)
	_, err := rego.New(
		rego.Query(query),
		rego.Compiler(compiler),
		rego.Target(planTarget),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(pctx)
	if err != nil {
		return nil, fmt.Errorf("ireval: plan %s: %w", query, err)
	}
	if p == nil {
		return nil, fmt.Errorf("ireval: plan %s: the planner produced nothing", query)
	}
	return p, nil
}

// Compile plans query over the modules and prepares an evaluator for it: a
// *DeclineError when the plan uses something the evaluator does not run.
func Compile(ctx context.Context, query string, modules []Module, unsafe map[string]struct{}, opts ...Option) (*Evaluator, error) {
	p, err := Plan(ctx, query, modules, unsafe)
	if err != nil {
		return nil, err
	}
	return New(p, opts...)
}

package ireval

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// pureBuiltins are the builtins the evaluator runs, each through OPA's own
// implementation (topdown's registry). They are functions of their operands
// alone: none reads the evaluation's state (caches, clock, seed, tracers,
// print hook), none is nondeterministic or a relation, so calling them with
// a bare BuiltinContext gives exactly what OPA's evaluator gets. Any other
// builtin declines the policy at build time. Add one only with a look at its
// implementation in topdown and a differential test that calls it.
var pureBuiltins = []string{
	// comparison and arithmetic
	"equal", "neq", "lt", "gt", "lte", "gte",
	"plus", "minus", "mul", "div", "rem", "abs", "round", "ceil", "floor", "to_number",
	// aggregates
	"count", "sum", "product", "max", "min", "sort",
	// membership (`in`)
	"internal.member_2", "internal.member_3",
	// arrays, sets, objects
	"array.concat", "array.slice", "array.reverse",
	"and", "or", "intersection", "union",
	"object.get", "object.union", "object.union_n", "object.remove", "object.filter", "object.keys", "object.subset",
	// strings
	"concat", "contains", "startswith", "endswith", "lower", "upper",
	"trim", "trim_left", "trim_right", "trim_prefix", "trim_suffix", "trim_space",
	"split", "replace", "substring", "indexof", "format_int", "sprintf",
	"strings.replace_n", "strings.reverse", "strings.count",
	// types
	"is_array", "is_boolean", "is_null", "is_number", "is_object", "is_set", "is_string", "type_name",
}

// SupportedBuiltins lists the builtins the evaluator runs, sorted.
func SupportedBuiltins() []string {
	out := slices.Clone(pureBuiltins)
	slices.Sort(out)
	return out
}

func lookupBuiltin(name string) (*builtin, error) {
	if !slices.Contains(pureBuiltins, name) {
		return nil, decline("builtin "+name, "not among the builtins the evaluator runs")
	}
	decl, ok := ast.BuiltinMap[name]
	if !ok || decl.Decl == nil {
		return nil, decline("builtin "+name, "not declared by OPA")
	}
	if decl.Relation || decl.Nondeterministic {
		return nil, decline("builtin "+name, "a relation or nondeterministic")
	}
	fn := topdown.GetBuiltin(name)
	if fn == nil {
		return nil, decline("builtin "+name, "no implementation in OPA's registry")
	}
	return &builtin{name: name, fn: fn, arity: len(decl.Decl.FuncArgs().Args)}, nil
}

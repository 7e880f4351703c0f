package ireval

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// features exercises Rego beyond the shipped policy: functions with
// arguments, comprehensions, partial objects and sets, every, else, ref
// heads, numbers, negation over undefined, and the builtins of the list.
const features = `package t

import rego.v1

default out := "none"

out := {
	"double": double(input.n),
	"evens": [x | some x in input.xs; x % 2 == 0],
	"set": {x | some x in input.xs},
	"obj": {k: v | some k, v in input.o},
	"names": names,
	"parts": parts,
	"all_pos": all_pos,
	"grade": grade(input.n),
	"msg": sprintf("%s=%d", [input.s, input.n]),
	"up": upper(input.s),
	"split": split(input.s, "-"),
	"sum": sum(input.xs),
	"sorted": sort(input.xs),
	"got": object.get(input.o, "a", "dflt"),
	"u": object.union({"a": 1}, input.o),
	"has_b": has_b,
	"nested": a.b.c,
} if input.mode == "full"

out := "conflict-free" if input.mode == "lite"

double(x) := x * 2

grade(n) := "big" if n > 10
else := "mid" if n > 5
else := "small"

names contains n if {
	some u in input.users
	n := u.name
}

parts[k] := v if {
	some k, v in input.o
	v > 1
}

all_pos if {
	every x in input.xs { x > 0 }
}

has_b if not input.o.b == 0

a.b.c := count(input.xs)

conflict := 1 if input.c1
conflict := 2 if input.c2
`

func featurePair(t *testing.T, src string) *pair {
	t.Helper()
	p, err := newPairQuery(t, "data.t.out", src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newPairQuery(t *testing.T, q, src string) (*pair, error) {
	t.Helper()
	mods := []Module{{Name: "t.rego", Source: src}}
	ev, err := Compile(context.Background(), q, mods, nil)
	if err != nil {
		return nil, err
	}
	p, err := newRegoQueryFor(q, mods)
	if err != nil {
		return nil, err
	}
	p.ir = ev
	return p, nil
}

func TestDifferentialFeatures(t *testing.T) {
	p := featurePair(t, features)
	inputs := []string{
		`{"mode": "full", "n": 3, "xs": [1, 2, 3, 4], "o": {"a": 1, "b": 2}, "s": "a-b", "users": [{"name": "x"}, {"name": "y"}]}`,
		`{"mode": "full", "n": 12, "xs": [2, -4], "o": {"b": 0, "c": 5}, "s": "q", "users": []}`,
		`{"mode": "full", "n": 7.5, "xs": [], "o": {}, "s": "", "users": [{"nom": 1}]}`,
		`{"mode": "full", "n": "x", "xs": [1], "o": {"a": 1}, "s": "s", "users": [{"name": "x"}]}`,
		`{"mode": "full", "n": 1, "xs": "notalist", "o": [1], "s": 5, "users": {"k": {"name": "z"}}}`,
		`{"mode": "full", "n": 1, "xs": {"a": 2, "b": 3}, "o": {"a": {"x": 1}, "b": "2"}, "s": "a-b-c", "users": [{"name": 1}, {"name": 1}]}`,
		`{"mode": "lite"}`,
		`{"mode": "other"}`,
		`{}`,
		`[]`,
		`"str"`,
	}
	full := 0
	for _, js := range inputs {
		in, err := ast.ValueFromReader(strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		mis, _ := p.diff(t, in)
		if mis != "" {
			t.Errorf("input %s:\n  %s", js, mis)
		}
		if got, _ := p.ir.Eval(context.Background(), in); strings.Contains(outcome(got, nil), "double") {
			full++
		}
	}
	if full < 2 {
		t.Errorf("%d inputs built the full object, want at least 2 (the test must reach the features)", full)
	}
}

func TestConflictIsAnErrorInBoth(t *testing.T) {
	p, err := newPairQuery(t, "data.t.conflict", features)
	if err != nil {
		t.Fatal(err)
	}
	for js, want := range map[string]string{
		`{"c1": true, "c2": true}`: "error",
		`{"c1": true}`:             "1",
		`{}`:                       "undefined",
	} {
		in, _ := ast.ValueFromReader(strings.NewReader(js))
		if mis, _ := p.diff(t, in); mis != "" {
			t.Errorf("input %s:\n  %s", js, mis)
		}
		got, err := p.ir.Eval(context.Background(), in)
		if o := outcome(got, err); o != want {
			t.Errorf("input %s: %s, want %s", js, o, want)
		}
		if want == "error" && !errors.Is(err, ErrConflict) {
			t.Errorf("input %s: error %v, want ErrConflict", js, err)
		}
	}
}

// TestDeclines: a plan with a statement or builtin the evaluator does not
// run is declined at build time, naming what and where.
func TestDeclines(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"with", "package t\nimport rego.v1\nx if { y with input.a as 1 }\ny if input.a == 1", "WithStmt"},
		{"nondeterministic builtin", "package t\nimport rego.v1\nx := time.now_ns()", "time.now_ns"},
		{"unlisted builtin", "package t\nimport rego.v1\nx := regex.match(\"a\", input.s)", "regex.match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(context.Background(), "data.t.x", []Module{{Name: "t.rego", Source: tc.src}}, nil)
			var de *DeclineError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a DeclineError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

package ireval

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
)

// BenchmarkIREval measures one decision's evaluation, IR against OPA's
// evaluator, over the benchmark mix of each size (inputs built beforehand;
// build=yes builds each input too, as a cache-off Check does).
func BenchmarkIREval(b *testing.B) {
	p := shippedPair(b)
	ctx := context.Background()
	for _, size := range tenantgen.Sizes() {
		d, err := tenantgen.Shared(size)
		if err != nil {
			b.Fatal(err)
		}
		data := loadDataset(b, d)
		inputs := make([]ast.Value, len(d.Requests))
		for i, r := range d.Requests {
			inputs[i] = buildInput(data, p.isRes, r.User, r.Method, r.Path)
		}
		evals := []struct {
			name string
			eval func(ast.Value) (*ast.Term, error)
		}{
			{"ir", func(in ast.Value) (*ast.Term, error) { return p.ir.Eval(ctx, in) }},
			{"rego", func(in ast.Value) (*ast.Term, error) { return p.evalRego(ctx, in) }},
		}
		for _, ev := range evals {
			b.Run("size="+size.Name+"/eval="+ev.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := ev.eval(inputs[i%len(inputs)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("size="+size.Name+"/eval="+ev.name+"/build=yes", func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					r := &d.Requests[i%len(d.Requests)]
					if _, err := ev.eval(buildInput(data, p.isRes, r.User, r.Method, r.Path)); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

package ireval

import (
	"bytes"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// FuzzIREval compares the two evaluators on inputs built from a fuzzed
// request against the demo tree, with a fuzzed JSON object laid over the
// input's top-level fields (so the fuzzer reaches any shape, not only the
// ones Go builds).
func FuzzIREval(f *testing.F) {
	p := shippedPair(f)
	demo, err := tenant.LoadDir("../../data")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("bob@contoso.example", "GET", "/api/v1/customers/contoso/vbr-jobs", []byte(nil))
	f.Add("bob@contoso.example", "POST", "/api/v1/customers/contoso/users/alice@contoso.example", []byte(`{"named_user":{"role":"company-owner"}}`))
	f.Add("", "DELETE", "/api/v1/customers/fabrikam/computers/pc-1/agent-jobs", []byte(`{"subject":"x"}`))
	f.Add("carol@contoso.example", "GET", "/api/v1/customers/contoso/locations/hq/agent-jobs", []byte(`{"user":{"id":"carol@contoso.example","locations":["hq"],"computers":[1]}}`))
	f.Add("dave@contoso.example", "GET", "/api/v1/customers/contoso/agent-jobs", []byte(`{"route":{"customer":"contoso","resource":"agent-jobs","computer":true}}`))
	f.Fuzz(func(t *testing.T, sub, method, path string, overlay []byte) {
		in := buildInput(demo, p.isRes, sub, method, path).(ast.Object)
		if len(overlay) > 0 {
			v, err := ast.ValueFromReader(bytes.NewReader(overlay))
			if err != nil {
				return
			}
			obj, ok := v.(ast.Object)
			if !ok {
				return
			}
			obj.Foreach(func(k, v *ast.Term) { in.Insert(k, v) })
		}
		if mis, _ := p.diff(t, in); mis != "" {
			t.Fatalf("input %v:\n  %s", in, mis)
		}
	})
}

package policy

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ExplainQuery is the rule `tenantgate explain` evaluates beside the
// decision: the policy's own account of each row of its decision order. It
// is never evaluated on the serving path.
const ExplainQuery = "data.tenantgate.authz.explain"

// Row is one row of the decision order as the policy reports it.
type Row struct {
	Row    int    `json:"row"`    // the row of spec section 3
	Rule   string `json:"rule"`   // the rule that must hold ("not r": must not hold)
	Check  string `json:"check"`  // what it checks, in words
	Reason string `json:"reason"` // the reason it denies with
	Result string `json:"result"` // pass, fail or not_reached
}

// Row results.
const (
	RowPass       = "pass"
	RowFail       = "fail"
	RowNotReached = "not_reached"
)

// Explanation is the policy's explain document: its rows, the facts they
// read (whatever the policy lists, as JSON values) and the decision.
type Explanation struct {
	Rows     []Row                      `json:"rows"`
	Facts    map[string]json.RawMessage `json:"facts"`
	Decision struct {
		Allowed bool              `json:"allowed"`
		Status  int               `json:"status"`
		Reason  string            `json:"reason"`
		Headers map[string]string `json:"headers"`
	} `json:"decision"`
}

// Explain evaluates ExplainQuery for one input. The query is prepared per
// call: explain answers one question per process (or per admin request), so
// preparing costs less than keeping a second prepared query in every
// snapshot. A policy without the rule is an error that says so.
func (p *Policy) Explain(ctx context.Context, input ast.Value) (*Explanation, error) {
	rs, err := rego.New(
		rego.Query(ExplainQuery),
		rego.Compiler(p.compiler),
		rego.Store(p.store),
		rego.Transaction(p.txn),
		rego.ParsedInput(input),
		rego.SetRegoVersion(ast.RegoV1),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", ExplainQuery, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("evaluate %s: undefined: the policy has no explain rule (see policies/authz.rego)", ExplainQuery)
	}
	raw, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", ExplainQuery, err)
	}
	var e Explanation
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("evaluate %s: the result is not {rows, facts, decision}: %w", ExplainQuery, err)
	}
	return &e, nil
}

// FirstFailure is the first failing row, nil when every row passes.
func (e *Explanation) FirstFailure() *Row {
	for i := range e.Rows {
		if e.Rows[i].Result == RowFail {
			return &e.Rows[i]
		}
	}
	return nil
}

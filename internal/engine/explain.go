package engine

import (
	"context"

	"github.com/tenantgate/tenantgate/internal/input"
	"github.com/tenantgate/tenantgate/internal/policy"
)

// ExplainAs decides like DecideAs and also evaluates the policy's explain
// rule on the very same input, so the rows and facts it reports are the ones
// this decision was made from. The Result is the serving entry point's own
// answer; the explanation's decision is the policy's copy of it.
func (s *Snapshot) ExplainAs(ctx context.Context, sub string, req *Request) (Result, *policy.Explanation, error) {
	input, customer := input.Build(s.Data, s.Policy.IsResource, sub, req.Method, req.Path)
	d, err := s.Policy.Eval(ctx, input)
	res := Result{Decision: d, User: sub, Customer: customer, Revision: s.Revision}
	if err != nil {
		return res, nil, err
	}
	ex, err := s.Policy.Explain(ctx, input)
	return res, ex, err
}

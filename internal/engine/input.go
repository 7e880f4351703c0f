package engine

import (
	"context"

	"github.com/tenantgate/tenantgate/internal/input"
)

// DecideAs gathers the facts the policy reads (path verdict, subject, route,
// records looked up in the snapshot's index) and lets the policy decide, for
// an already-verified subject ("" for none); req.Authorization is not read.
// Go never decides here: a fact it could not establish is simply absent.
// `tenantgate check` calls it directly; Engine.Check after verifying the
// token. The error is the evaluation's; the caller fails closed.
func (s *Snapshot) DecideAs(ctx context.Context, sub string, req *Request) (Result, error) {
	in, customer := input.Build(s.Data, s.Policy.IsResource, sub, req.Method, req.Path)
	d, err := s.decide(ctx, in)
	return Result{Decision: d, User: sub, Customer: customer, Revision: s.Revision}, err
}

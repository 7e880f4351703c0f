package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/policy"
)

// Explanation is one request explained: the policy's rows and facts beside
// the decision the serving entry point gives.
type Explanation struct {
	User     string                     `json:"user"`
	Method   string                     `json:"method"`
	Path     string                     `json:"path"`
	Token    string                     `json:"token_error,omitempty"` // why a --token was rejected
	Allowed  bool                       `json:"allowed"`
	Status   int                        `json:"status"`
	Reason   string                     `json:"reason"`
	Headers  map[string]string          `json:"headers"`
	Rows     []policy.Row               `json:"rows"`
	Facts    map[string]json.RawMessage `json:"facts"`
	Mismatch string                     `json:"mismatch,omitempty"`
}

// Explain decides the request for sub ("" for no valid token) and has the
// policy explain it. Where the policy's rows disagree with its decision (an
// edit to the reason chain that explain_order did not follow), Mismatch says
// so: the decision is always the serving entry point's.
func Explain(ctx context.Context, s *engine.Snapshot, sub string, req engine.Request) (*Explanation, error) {
	res, ex, err := s.ExplainAs(ctx, sub, &req)
	if err != nil {
		return nil, err
	}
	out := outcomeOf(res.Decision)
	e := &Explanation{
		User: sub, Method: req.Method, Path: req.Path,
		Allowed: res.Allowed, Status: res.Status, Reason: res.Reason, Headers: out.Headers,
		Rows: ex.Rows, Facts: ex.Facts,
	}
	if e.Facts == nil {
		e.Facts = map[string]json.RawMessage{}
	}
	want := "allowed"
	if f := ex.FirstFailure(); f != nil {
		want = f.Reason
	}
	switch {
	case ex.Decision.Reason != res.Reason || ex.Decision.Allowed != res.Allowed || !maps.Equal(ex.Decision.Headers, out.Headers):
		e.Mismatch = fmt.Sprintf("the explain rule's decision (%s) is not the decision (%s)", ex.Decision.Reason, res.Reason)
	case want != res.Reason:
		e.Mismatch = fmt.Sprintf("the first failing row of explain_order gives %s but the decision is %s: "+
			"explain_order in the policy does not follow its reason chain", want, res.Reason)
	}
	return e, nil
}

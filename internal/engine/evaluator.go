package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/ireval"
	"github.com/tenantgate/tenantgate/internal/policy"
)

// The evaluators a snapshot can decide with (Options.Evaluator).
const (
	// EvaluatorIR runs OPA's compiled plan of the policy (internal/ireval):
	// the same decisions, about 20x less CPU and 15x fewer allocations.
	EvaluatorIR = "ir"
	// EvaluatorRego is OPA's own tree-walking evaluator.
	EvaluatorRego = "rego"
)

// evaluatorEnv overrides the default evaluator, so the whole test suite can
// run once with each (make test).
const evaluatorEnv = "TENANTGATE_EVALUATOR"

// DefaultEvaluator is the evaluator an engine uses when Options.Evaluator
// is empty: ir, unless TENANTGATE_EVALUATOR names another.
func DefaultEvaluator() string {
	if v := os.Getenv(evaluatorEnv); v == EvaluatorRego || v == EvaluatorIR {
		return v
	}
	return EvaluatorIR
}

// ValidEvaluator reports whether name is an evaluator ("" is the default).
func ValidEvaluator(name string) bool {
	return name == "" || name == EvaluatorIR || name == EvaluatorRego
}

// EvaluatorStatus says which evaluator a snapshot decides with, and why.
type EvaluatorStatus struct {
	Requested string `json:"requested"` // what the options asked for
	InUse     string `json:"in_use"`    // what the snapshot decides with
	// Declined is why the IR evaluator was asked for but not used: the
	// policy uses something it does not run, or the self-check differed.
	Declined string `json:"declined,omitempty"`
	// SelfCheck counts the inputs both evaluators decided at build time,
	// and on how many they differed.
	SelfCheckInputs     int `json:"self_check_inputs"`
	SelfCheckMismatches int `json:"self_check_mismatches"`
}

// evaluator is a snapshot's choice of evaluator; the zero value is OPA's.
type evaluator struct {
	ir     *ireval.Evaluator // nil: OPA's evaluator
	check  *selfCheck        // set only while the self-check runs
	status EvaluatorStatus
}

// Evaluator reports which evaluator the snapshot decides with.
func (s *Snapshot) Evaluator() EvaluatorStatus {
	st := s.eval.status
	if st.InUse == "" {
		st.InUse = EvaluatorRego
	}
	if st.Requested == "" {
		st.Requested = EvaluatorRego
	}
	return st
}

// decide evaluates the decision on an input DecideAs built.
func (s *Snapshot) decide(ctx context.Context, input ast.Value) (decision.Decision, error) {
	switch {
	case s.eval.check != nil:
		return s.eval.check.decide(ctx, s, input)
	case s.eval.ir != nil:
		return decideIR(ctx, s.eval.ir, input)
	default:
		return s.Policy.Eval(ctx, input)
	}
}

func decideIR(ctx context.Context, ev *ireval.Evaluator, input ast.Value) (decision.Decision, error) {
	t, err := ev.Eval(ctx, input)
	if err != nil {
		return decision.Decision{}, fmt.Errorf("evaluate %s: %w", policy.DecisionQuery, err)
	}
	return policy.Decode(t)
}

// selfCheckInputs bounds the build-time self-check: a few hundred inputs,
// a few tens of milliseconds of OPA's evaluator per reload.
const selfCheckInputs = 400

// selfCheck decides each input with both evaluators, answers with OPA's,
// and remembers where they differed.
type selfCheck struct {
	ir         *ireval.Evaluator
	inputs     int
	mismatches []string
}

func (c *selfCheck) decide(ctx context.Context, s *Snapshot, input ast.Value) (decision.Decision, error) {
	want, werr := s.Policy.Eval(ctx, input)
	got, gerr := decideIR(ctx, c.ir, input)
	c.inputs++
	if (werr != nil) != (gerr != nil) || !sameDecision(want, got) {
		c.mismatches = append(c.mismatches, fmt.Sprintf("input %v: rego %s, ir %s",
			input, describe(want, werr), describe(got, gerr)))
	}
	return want, werr
}

func sameDecision(a, b decision.Decision) bool {
	return a.Allowed == b.Allowed && a.Status == b.Status && a.Reason == b.Reason && slices.Equal(a.Headers, b.Headers)
}

func describe(d decision.Decision, err error) string {
	if err != nil {
		return "error (" + err.Error() + ")"
	}
	return fmt.Sprintf("%d %s %v", d.Status, d.Reason, d.Headers)
}

// evaluatorChoice remembers the last policy's evaluator choice. The IR
// evaluator is a function of the policy alone (tenant data is input), so a
// reload that changed only data, or keys, reuses it: planning and the
// self-check cost a reload several hundred milliseconds, which a data edit
// that must be in force within a second cannot spare. Only Reload, which is
// serialised, touches it.
type evaluatorChoice struct {
	digest    string // the policy's
	requested string
	eval      evaluator
}

// chooseEvaluator prepares the evaluator a new snapshot will decide with.
// The IR evaluator is used only when OPA's plan of the policy is fully
// supported and a self-check on representative inputs finds it deciding
// exactly as OPA's evaluator does; otherwise the snapshot decides with
// OPA's evaluator, and the log says why. It never fails the reload.
func chooseEvaluator(ctx context.Context, s *Snapshot, requested string, last *evaluatorChoice, log *slog.Logger) {
	if requested == "" {
		requested = DefaultEvaluator()
	}
	if last.digest == s.Policy.Digest() && last.requested == requested {
		s.eval = last.eval
		return
	}
	defer func() {
		if ctx.Err() == nil { // a cut-short self-check proves nothing either way
			*last = evaluatorChoice{digest: s.Policy.Digest(), requested: requested, eval: s.eval}
		}
	}()
	s.eval = evaluator{status: EvaluatorStatus{Requested: requested, InUse: EvaluatorRego}}
	if requested != EvaluatorIR {
		return
	}
	start := time.Now()
	mods := make([]ireval.Module, len(s.Policy.Sources()))
	for i, f := range s.Policy.Sources() {
		mods[i] = ireval.Module{Name: f.Name, Source: string(f.Content)}
	}
	ev, err := ireval.Compile(ctx, policy.DecisionQuery, mods, nil)
	if err != nil {
		var de *ireval.DeclineError
		if errors.As(err, &de) {
			log.Warn("the IR evaluator declined the policy; deciding with OPA's evaluator",
				"reason", de.Error(), "revision", s.Revision)
		} else {
			log.Error("planning the policy failed; deciding with OPA's evaluator",
				"error", err, "revision", s.Revision)
		}
		s.eval.status.Declined = err.Error()
		return
	}

	check := &selfCheck{ir: ev}
	s.eval.check = check
	for _, r := range selfCheckRequests(s, selfCheckInputs) {
		if ctx.Err() != nil {
			break
		}
		_, _ = s.DecideAs(ctx, r.sub, &r.req)
	}
	s.eval.check = nil
	s.eval.status.SelfCheckInputs = check.inputs
	s.eval.status.SelfCheckMismatches = len(check.mismatches)
	if ctx.Err() != nil || len(check.mismatches) > 0 {
		for i, m := range check.mismatches {
			if i == 5 {
				break
			}
			log.Error("self-check: the IR evaluator decided otherwise than OPA's", "detail", m, "revision", s.Revision)
		}
		s.eval.status.Declined = fmt.Sprintf("self-check: %d of %d inputs decided differently", len(check.mismatches), check.inputs)
		if ctx.Err() != nil {
			s.eval.status.Declined = "self-check: " + ctx.Err().Error()
		}
		log.Error("deciding with OPA's evaluator for this snapshot", "reason", s.eval.status.Declined, "revision", s.Revision)
		return
	}
	s.eval.ir = ev
	s.eval.status.InUse = EvaluatorIR
	st := ev.Stats()
	log.Info("deciding with the IR evaluator", "revision", s.Revision, "self_check_inputs", check.inputs,
		"functions", st.Funcs, "statements", st.Statements, "took", time.Since(start))
}

type checkRequest struct {
	sub string
	req Request
}

// selfCheckRequests builds up to n representative requests: a sample of
// users on every catalog resource of their own customer (read and write,
// collection and item, with each kind of qualifier), on a customer outside
// their tenant, and the unauthenticated, unknown and malformed cases.
func selfCheckRequests(s *Snapshot, n int) []checkRequest {
	var resources []string
	if t := s.Policy.Tables(); t != nil {
		for name := range t.Catalog {
			resources = append(resources, name)
		}
	}
	slices.Sort(resources)
	var customers []string
	for id := range s.Data.Customers {
		customers = append(customers, id)
		if len(customers) == 4 {
			break
		}
	}
	out := []checkRequest{
		{"", Request{Method: "GET", Path: "/api/v1/customers/x/users"}},
		{"nobody@example.invalid", Request{Method: "GET", Path: "/api/v1/customers/x/users"}},
		{"nobody@example.invalid", Request{Method: "GET", Path: "/api/v1/customers/%2e%2e/users"}},
	}
	perUser := max(1, 4*len(resources)+4)
	for _, u := range s.Data.Users {
		if len(out)+perUser > n {
			break
		}
		base := "/api/v1/customers/" + u.Customer
		loc, comp := "hq", "pc-1"
		if len(u.Locations) > 0 {
			loc = u.Locations[0]
		}
		if len(u.Computers) > 0 {
			comp = u.Computers[0]
		}
		for i, res := range resources {
			paths := []string{base + "/" + res, base + "/" + res + "/" + u.ID}
			switch i % 3 {
			case 0:
				paths[1] = base + "/locations/" + loc + "/" + res
			case 1:
				paths[1] = base + "/computers/" + comp + "/" + res
			}
			for _, p := range paths {
				out = append(out, checkRequest{u.ID, Request{Method: "GET", Path: p}}, checkRequest{u.ID, Request{Method: "PUT", Path: p}})
			}
		}
		for _, c := range customers {
			out = append(out, checkRequest{u.ID, Request{Method: "GET", Path: "/api/v1/customers/" + c + "/users"}})
		}
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Builder builds snapshots for the one-shot commands (check, access,
// who-can, diff): Build, then the evaluator choice Engine.Reload makes, the
// IR evaluator and its build-time self-check included, so a sweep of
// thousands of decisions runs on the cheaper evaluator only when it has
// been shown to decide as OPA's does. Snapshots of one policy share one
// choice (diff builds two). Safe for concurrent use; a zero Builder asks
// for the default evaluator and logs to slog.Default.
type Builder struct {
	// Evaluator is "ir" or "rego"; "" is DefaultEvaluator().
	Evaluator string
	Logger    *slog.Logger

	mu   sync.Mutex // serialises choices, so a second snapshot reuses the first's
	last evaluatorChoice
}

// Build builds a snapshot (see Build) and chooses its evaluator. The
// snapshot has no decision cache: a sweep asks each question once.
func (b *Builder) Build(ctx context.Context, src Source, ident *identity.Config) (*Snapshot, error) {
	s, err := Build(ctx, src, ident)
	if err != nil {
		return nil, err
	}
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	chooseEvaluator(ctx, s, b.Evaluator, &b.last, log)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

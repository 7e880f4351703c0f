package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/route"
)

// Request is what the front ends (gRPC ext_authz, HTTP mode) extract from a
// proxied request: nothing else reaches the decision.
type Request struct {
	Method        string // as sent; methods are case-sensitive
	Path          string // the raw request target, undecoded, query included
	Authorization string // the Authorization header value, "" when absent
}

// Result is a decision with what the decision log and metrics need.
type Result struct {
	decision.Decision
	User     string // the verified subject, "" when unauthenticated
	Customer string // the target customer from the path, "" without a route
	Revision string // the snapshot that answered, "" when none
	// DryRun is set when the engine runs in dry-run mode and the policy
	// denied: Decision is then the allow that was sent, and Denied is the
	// deny the policy decided (what the decision log reports).
	DryRun bool
	Denied decision.Decision
}

// Checker decides one request: what the front ends (gRPC ext_authz, the HTTP
// mode) need of the engine. *Engine is the one used in production; tests
// put a stand-in behind a real front end.
type Checker interface {
	Check(ctx context.Context, req *Request) Result
}

// Observer is told of every decision and every reload (metrics, decision log).
// ObserveReload gets the snapshot the reload published (nil: none, the one
// in force stays) and the failing sources' errors (nil: none failed); a
// reload may publish a snapshot while a source failed, which then keeps its
// last good version in it.
// Implementations must be cheap and safe for concurrent use, and must never
// record req.Authorization (it holds the token).
type Observer interface {
	ObserveDecision(req *Request, res *Result, elapsed time.Duration)
	ObserveReload(s *Snapshot, err error)
}

// Observers fans one event out to several observers, in order.
type Observers []Observer

// ObserveDecision implements Observer.
func (os Observers) ObserveDecision(req *Request, res *Result, elapsed time.Duration) {
	for _, o := range os {
		o.ObserveDecision(req, res, elapsed)
	}
}

// ObserveReload implements Observer.
func (os Observers) ObserveReload(s *Snapshot, err error) {
	for _, o := range os {
		o.ObserveReload(s, err)
	}
}

// Options configures an Engine.
type Options struct {
	Source   Source
	Identity *identity.Config // nil: no tokens are accepted
	// Timeout bounds one decision; an overrun denies with internal_error.
	Timeout  time.Duration
	Logger   *slog.Logger
	Observer Observer // may be nil
	// CacheSize bounds the per-snapshot decision cache (entries); 0 means
	// the default, a negative value turns the cache off.
	CacheSize int
	// BuildHook, when set, is called as a reload starts; the function it
	// returns is called when the reload ends, with whether a snapshot was
	// published. Process-wide tuning around a build (the collector's pace,
	// returning memory to the OS) belongs to the program, not the engine.
	BuildHook func() (done func(published bool))
	// DryRun allows every request: a deny is logged and observed (see
	// Result.DryRun) but the proxy is told to let the request through. For
	// rolling out a policy safely, never for production enforcement.
	DryRun bool
	// Evaluator is "ir" or "rego" (evaluator.go); "" is DefaultEvaluator().
	Evaluator string
}

// Engine holds the current snapshot and answers requests from it.
type Engine struct {
	opts    Options
	current atomic.Pointer[Snapshot]

	mu      sync.Mutex // serialises reloads; never taken by Check
	src     sources    // each source's last good version and state
	lastErr atomic.Pointer[reloadError]
	reloads atomic.Uint64
	causes  causeLog // why tokens and paths were refused, rate-limited
	// lastEval is the last policy's evaluator, reused while the policy
	// is unchanged (evaluator.go); only Reload touches it, under mu.
	lastEval evaluatorChoice
}

// buildTimeout bounds one snapshot build (200,000 users take ~1.5 s).
const buildTimeout = time.Minute

// DefaultCacheSize is the decision cache's default bound, per snapshot.
const DefaultCacheSize = 32768

type reloadError struct {
	err  error
	when time.Time
}

// New returns an engine with no snapshot: until Reload succeeds every Check
// is a 503 internal_error.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 100 * time.Millisecond
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	return &Engine{opts: opts}
}

// Reload reads every source (data, policies, each key file) and publishes a
// snapshot composed of each source's last good version. A source that fails
// keeps its previous version and its error is recorded for /v1/status and
// returned (joined, when several fail); the others' new versions are
// published all the same. At start, a failing source has no previous
// version: nothing is published and the error is returned.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	published := false
	if e.opts.BuildHook != nil {
		done := e.opts.BuildHook()
		defer func() { done(published) }()
	}
	// A bound on the build, so a policy whose tables never finish
	// evaluating fails the reload instead of holding the watcher forever.
	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	s, err := e.rebuild(bctx)
	if err != nil && ctx.Err() != nil {
		// Cancelled (the server is stopping): not a failed reload.
		return err
	}
	e.reloads.Add(1)
	if s != nil {
		chooseEvaluator(bctx, s, e.opts.Evaluator, &e.lastEval, e.opts.Logger)
		if ok, builtin := s.Policy.Deterministic(); ok {
			s.cache = newDecisionCache(e.opts.CacheSize)
		} else {
			e.opts.Logger.Warn("the policy calls a nondeterministic builtin: decisions are not cached for this snapshot",
				"builtin", builtin, "revision", s.Revision)
		}
	}
	// Observers first, then publish: whoever sees the new state in
	// /v1/status also sees it in the metrics.
	if e.opts.Observer != nil {
		e.opts.Observer.ObserveReload(s, err)
	}
	if err != nil {
		e.lastErr.Store(&reloadError{err: err, when: time.Now()})
	} else {
		e.lastErr.Store(nil)
	}
	e.publishStates()
	if s == nil {
		return err
	}
	e.current.Store(s)
	published = true
	e.opts.Logger.Info("snapshot loaded", "revision", s.Revision,
		"customers", len(s.Data.Customers), "users", len(s.Data.Users), "files", len(s.Files))
	return err
}

// Snapshot returns the snapshot in force, nil before the first good load.
func (e *Engine) Snapshot() *Snapshot { return e.current.Load() }

// Status is what /v1/status shows. LastError holds every failing source's
// error, each prefixed with the source's name; Sources tells them apart.
type Status struct {
	Revision    string    `json:"revision"`
	LoadedAt    time.Time `json:"loaded_at,omitzero"`
	BuildTime   float64   `json:"build_seconds"` // how long the snapshot in force took to build
	Files       []string  `json:"files"`
	Customers   int       `json:"customers"`
	Users       int       `json:"users"`
	Reloads     uint64    `json:"reloads"`
	LastError   string    `json:"last_reload_error,omitempty"`
	LastErrorAt time.Time `json:"last_reload_error_at,omitzero"`
	Ready       bool      `json:"ready"`
	// Sources is each source's state by name (SourceData, SourcePolicies or
	// SourceBundle, SourceHS256Secret, SourceJWKS, SourceJWKSURL): each
	// keeps its own last good version.
	Sources map[string]SourceStatus `json:"sources"`
	// Evaluator is which evaluator the snapshot in force decides with.
	Evaluator *EvaluatorStatus `json:"evaluator,omitempty"`
}

// Status reports the snapshot in force, each source's state, and the last
// reload's errors, if a source failed in it.
func (e *Engine) Status() Status {
	st := Status{Reloads: e.reloads.Load(), Files: []string{}, Sources: e.sourceStates()}
	if s := e.current.Load(); s != nil {
		st.Ready = true
		st.Revision = s.Revision
		st.LoadedAt = s.Built
		st.BuildTime = s.BuildTime.Seconds()
		st.Files = s.Files
		st.Customers = len(s.Data.Customers)
		st.Users = len(s.Data.Users)
		ev := s.Evaluator()
		st.Evaluator = &ev
	}
	if le := e.lastErr.Load(); le != nil {
		st.LastError = le.err.Error()
		st.LastErrorAt = le.when
	}
	return st
}

// Check decides one request. It never fails: an error, a panic in a
// dependency, a deadline overrun or no snapshot all deny with internal_error.
func (e *Engine) Check(ctx context.Context, req *Request) (res Result) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			e.opts.Logger.Error("decision panicked; denying", "panic", p, "method", req.Method, "path", req.Path)
			res = Result{Decision: decision.Internal()}
		}
		if e.opts.DryRun && !res.Allowed {
			res = dryRunAllow(res)
		}
		if e.opts.Observer != nil {
			e.observe(req, &res, time.Since(start))
		}
	}()

	s := e.current.Load()
	if s == nil {
		e.opts.Logger.Error("denying: " + errNoSnapshot.Error())
		return Result{Decision: decision.Internal()}
	}
	var sub string
	if s.Verifier != nil {
		var err error
		if sub, err = s.Verifier.Subject(req.Authorization, start); err != nil && req.Authorization != "" {
			// The cause only: the error may quote claims, and a log line
			// must never carry anything of the token.
			e.causes.log(e.opts.Logger, identity.Cause(err), "token refused")
		}
	}
	key, cacheable := keyFor(sub, req)
	cacheable = cacheable && s.cache != nil
	if cacheable {
		if v, ok := s.cache.get(key); ok {
			return Result{Decision: v.d, User: sub, Customer: v.customer, Revision: s.Revision}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	res, err := s.DecideAs(ctx, sub, req)
	defer e.explainDeny(req, &res)
	if err != nil {
		e.opts.Logger.Error("decision failed; denying", "error", err, "method", req.Method,
			"path", req.Path, "revision", s.Revision)
		return Result{Decision: decision.Internal(), User: res.User, Customer: res.Customer, Revision: s.Revision}
	}
	if res.Reason == decision.ReasonInternalError {
		// The policy's own fail-closed default: an input it could not
		// decide on. Retryable, so never remembered, and worth a log line.
		e.opts.Logger.Error("policy answered internal_error; denying", "method", req.Method,
			"path", req.Path, "revision", s.Revision)
		return res
	}
	if cacheable {
		s.cache.put(key, cached{d: res.Decision, customer: res.Customer})
	}
	return res
}

// observe tells the observer, which must not take the process down: a
// panic here would be past Check's own recover, and a crashed authorizer is
// what failure_mode_allow turns into allows.
func (e *Engine) observe(req *Request, res *Result, elapsed time.Duration) {
	defer func() {
		if p := recover(); p != nil {
			e.opts.Logger.Error("observer panicked", "panic", p)
		}
	}()
	e.opts.Observer.ObserveDecision(req, res, elapsed)
}

// dryRunAllow turns a deny into the allow dry-run mode sends: no identity
// headers (the policy did not vouch for any), only the reason it would have
// denied with, so the upstream and its logs can see it too.
func dryRunAllow(res Result) Result {
	res.DryRun, res.Denied = true, res.Decision
	res.Decision = decision.Decision{
		Allowed: true,
		Status:  200,
		Reason:  decision.ReasonAllowed,
		Headers: []decision.Header{{Name: decision.HeaderDryRunDeny, Value: res.Denied.Reason}},
	}
	return res
}

// explainDeny finishes a deny the policy decided for the client and the
// operator. A 401 to a request that carried a bearer token gets RFC 6750's
// error="invalid_token" in its challenge (the policy answers every 401 with
// a bare "Bearer", as it does not see the header). A bad_path deny logs
// which path check it failed (the check and the byte offset, never the path).
func (e *Engine) explainDeny(req *Request, res *Result) {
	switch res.Reason {
	case decision.ReasonUnauthenticated:
		if identity.BearerSent(req.Authorization) {
			res.Decision = res.Decision.WithHeader(decision.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
		}
	case decision.ReasonBadPath:
		var pe *route.PathError
		if _, err := route.Segments(req.Path, nil); errors.As(err, &pe) {
			e.causes.log(e.opts.Logger, "bad_path: "+pe.Err.Error(), "path refused", "offset", pe.Offset)
		}
	}
}

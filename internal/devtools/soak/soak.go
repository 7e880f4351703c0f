// Package soak drives one in-process tenantgate with concurrent gRPC load
// while its tenant data flips between two valid versions (in-place writes,
// write-then-rename, ConfigMap `..data` symlink swaps) with an invalid
// version every tenth flip, and checks every answer against the answers the
// two versions give, computed up front. It is the "never wrong, never down"
// check: an answer that is neither exactly A's nor exactly B's (a torn
// snapshot, a mix, a half-written or invalid file served) is a mismatch,
// and any RPC error is an error.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/server"
	"github.com/tenantgate/tenantgate/internal/settle"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Options configures a soak run. Zero values take the defaults.
type Options struct {
	Duration     time.Duration // how long load and flips run (default 5s)
	Workers      int           // concurrent gRPC callers (default 8)
	Conns        int           // gRPC connections they share (default 2)
	FlipEvery    time.Duration // how often the data changes (default 100ms)
	InvalidEvery int           // every n-th flip writes the invalid version (default 10)
	Debounce     time.Duration // the server's reload debounce (default 20ms)
	// DecisionTimeout is the engine's per-decision deadline. The default, 5s,
	// is far above a decision's cost: on a loaded machine a 503 from an
	// overrun would be a correct fail-closed answer, but not the version
	// answer this run checks for (the deadline has its own test).
	DecisionTimeout time.Duration
	Policies        string       // the policies directory (copied; default ../../policies)
	Logger          *slog.Logger // the server's logger (default: discard)
}

// Mode is how a flip writes the new version.
type Mode int

// The three ways operators and Kubernetes change files.
const (
	InPlace   Mode = iota // truncate and write the file (a reader can see it half-written)
	Rename                // write a temp file beside it and rename it over (vim, sed -i)
	ConfigMap             // a new ..<timestamp> dir and an atomic ..data symlink swap
	numModes
)

func (m Mode) String() string {
	return [...]string{"in-place", "rename", "configmap"}[m]
}

// Report is the outcome of a run.
type Report struct {
	Duration      time.Duration
	Workers       int
	Requests      uint64
	Errors        uint64 // RPC errors: must be 0
	Mismatches    uint64 // answers that are neither A's nor B's: must be 0
	AnswersA      uint64 // answers only A gives (for requests where A and B differ)
	AnswersB      uint64 // answers only B gives
	Flips         int
	FlipsByMode   [numModes]int
	InvalidFlips  int
	ReloadsOK     uint64
	ReloadsFailed uint64
	// FinalOK reports that, after the flips stopped, every request got the
	// last version's answer: the last change was picked up.
	FinalOK bool
	// Examples holds the first few errors and mismatches, for the log.
	Examples []string
}

// String is the one-line summary `make soak` prints.
func (r *Report) String() string {
	secs := r.Duration.Seconds()
	rps := 0.0
	if secs > 0 {
		rps = float64(r.Requests) / secs
	}
	return fmt.Sprintf("soak: %s, %d workers: %d requests (%.0f/s), %d errors, %d mismatches; "+
		"%d flips (in-place %d, rename %d, configmap %d; %d invalid); reloads %d ok, %d failed; "+
		"answers only A could give %d, only B %d; final version in force: %t",
		r.Duration.Round(time.Millisecond), r.Workers, r.Requests, rps, r.Errors, r.Mismatches,
		r.Flips, r.FlipsByMode[InPlace], r.FlipsByMode[Rename], r.FlipsByMode[ConfigMap], r.InvalidFlips,
		r.ReloadsOK, r.ReloadsFailed, r.AnswersA, r.AnswersB, r.FinalOK)
}

// expectation is what one request must get: exactly A's or B's response.
type expectation struct {
	req        request
	token      string
	a, b       *authv3.CheckResponse
	aDecision  string // "allowed", "location_forbidden" ... for messages
	bDecision  string
	differ     bool
	headerKeys map[string]string // the request headers (token included)
}

// Run runs one soak. It returns an error only when the run itself could not
// be set up or driven (a file could not be written, the server did not
// start); what it measured is in the Report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = withDefaults(opts)
	root, err := os.MkdirTemp("", "tenantgate-soak-")
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer os.RemoveAll(root)

	pol := filepath.Join(root, "policies")
	if err := copyRegoDir(opts.Policies, pol); err != nil {
		return nil, err
	}
	secret := filepath.Join(root, "hs256.secret")
	if err := os.WriteFile(secret, []byte("soak-secret-soak-secret-soak-secret-0123\n"), 0o600); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	exps, err := expectations(ctx, root, pol, secret, opts.Duration)
	if err != nil {
		return nil, err
	}

	data := filepath.Join(root, "data")
	fl, err := newFlipper(data)
	if err != nil {
		return nil, err
	}

	counter := &reloadCounter{}
	ident := identity.Config{HS256SecretFile: secret, Leeway: time.Minute}
	dirs := engine.Dirs{Data: data, Policies: pol, Cache: tenant.NewCache()}
	// Wired as `tenantgate serve` wires it: reads settle for the debounce,
	// and unchanged files are not parsed again.
	eng := engine.New(engine.Options{Source: settle.Wrap(dirs, opts.Debounce), Identity: &ident,
		Timeout: opts.DecisionTimeout, Logger: opts.Logger, Observer: counter})

	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	ready := make(chan string, 1)
	srvDone := make(chan error, 1)
	go func() {
		srvDone <- server.Run(srvCtx, server.Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Engine: eng, Logger: opts.Logger,
			Watch: append(dirs.Watched(), secret), Debounce: opts.Debounce,
			Ready: func(a server.Addrs) { ready <- a.GRPC.String() },
		})
	}()
	var grpcAddr string
	select {
	case grpcAddr = <-ready:
	case err := <-srvDone:
		return nil, fmt.Errorf("soak: server: %w", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("soak: server did not start within 30s")
	}
	defer func() {
		stopServer()
		<-srvDone
	}()

	conns := make([]*grpc.ClientConn, opts.Conns)
	clients := make([]authv3.AuthorizationClient, opts.Conns)
	for i := range conns {
		c, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("soak: grpc client: %w", err)
		}
		defer c.Close()
		conns[i], clients[i] = c, authv3.NewAuthorizationClient(c)
	}

	rep := &Report{Workers: opts.Workers}
	var st stats
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	start := time.Now()
	for w := range opts.Workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			client := clients[w%len(clients)]
			for n := 0; loadCtx.Err() == nil; n++ {
				e := &exps[rng.IntN(len(exps))]
				// The same decision asked three ways: as is, with a
				// unique query (cut before the policy and the decision
				// cache), and with one trailing slash (ignored by the
				// path checks, but another cache entry). Each snapshot
				// has its own cache, so every flip is answered both by
				// evaluations and by cache hits.
				query := ""
				switch n % 3 {
				case 1:
					query = "?soak=" + strconv.Itoa(w) + "-" + strconv.Itoa(n)
				case 2:
					query = "/"
				}
				st.check(loadCtx, client, e, query)
			}
		})
	}

	// The flipper runs on this goroutine until the duration is over.
	flipErr := fl.run(loadCtx, opts, rep)
	stopLoad()
	wg.Wait()
	rep.Duration = time.Since(start)
	if flipErr != nil {
		return nil, flipErr
	}
	rep.Requests, rep.Errors, rep.Mismatches = st.requests.Load(), st.errors.Load(), st.mismatches.Load()
	rep.AnswersA, rep.AnswersB = st.onlyA.Load(), st.onlyB.Load()

	// Liveness: the last version written must come into force (no reload
	// lost). The flipper never ends on the invalid version.
	final := fl.current
	deadline := time.Now().Add(30 * time.Second)
	for !rep.FinalOK && time.Now().Before(deadline) && ctx.Err() == nil {
		rep.FinalOK = allAnswer(ctx, clients[0], exps, final)
		if !rep.FinalOK {
			time.Sleep(50 * time.Millisecond)
		}
	}
	rep.ReloadsOK, rep.ReloadsFailed = counter.ok.Load(), counter.failed.Load()
	rep.Examples = st.examples()
	return rep, nil
}

func withDefaults(o Options) Options {
	if o.Duration <= 0 {
		o.Duration = 5 * time.Second
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Conns <= 0 {
		o.Conns = 2
	}
	if o.FlipEvery <= 0 {
		o.FlipEvery = 100 * time.Millisecond
	}
	if o.InvalidEvery <= 0 {
		o.InvalidEvery = 10
	}
	if o.Debounce <= 0 {
		o.Debounce = 20 * time.Millisecond
	}
	if o.DecisionTimeout <= 0 {
		o.DecisionTimeout = 5 * time.Second
	}
	if o.Policies == "" {
		o.Policies = "../../../policies"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// copyRegoDir copies the policy modules (not the tests) into dst.
func copyRegoDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("soak: policies: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".rego") || strings.HasSuffix(e.Name(), "_test.rego") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("soak: policies: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return fmt.Errorf("soak: %w", err)
		}
	}
	return nil
}

// which names a version on disk.
type which int

const (
	verA which = iota
	verB
)

func (w which) content() string {
	if w == verA {
		return versionA
	}
	return versionB
}

// expectations decides every request under A and under B, as a snapshot
// built from each version alone, and turns each decision into the exact
// CheckResponse the server must send for it.
func expectations(ctx context.Context, root, pol, secret string, d time.Duration) ([]expectation, error) {
	snaps := make([]*engine.Snapshot, 2)
	for i, v := range []which{verA, verB} {
		dir := filepath.Join(root, "expect-"+strconv.Itoa(i))
		if err := writeVersionDir(dir, v.content()); err != nil {
			return nil, err
		}
		s, err := engine.Build(ctx, engine.Dirs{Data: dir, Policies: pol}, nil)
		if err != nil {
			return nil, fmt.Errorf("soak: version %c does not build: %w", 'A'+i, err)
		}
		snaps[i] = s
	}
	tokens := map[string]string{}
	out := make([]expectation, len(requests))
	for i, r := range requests {
		e := expectation{req: r, headerKeys: map[string]string{":authority": "portal.example", "x-request-id": "soak"}}
		if r.user != "" {
			tok, ok := tokens[r.user]
			if !ok {
				var err error
				// The tokens outlive the run, whatever its length.
				tok, err = identity.SignHS256(secret, r.user, "", "", d+time.Hour, time.Now())
				if err != nil {
					return nil, fmt.Errorf("soak: %w", err)
				}
				tokens[r.user] = tok
			}
			e.token = tok
			e.headerKeys["authorization"] = "Bearer " + tok
		}
		for k, v := range r.extra {
			e.headerKeys[k] = v
		}
		httpReq := e.httpRequest("")
		for j, s := range snaps {
			res, err := s.DecideAs(ctx, r.user, &engine.Request{Method: r.method, Path: r.path})
			if err != nil {
				return nil, fmt.Errorf("soak: deciding %q under version %c: %w", r.name, 'A'+j, err)
			}
			resp := normalize(extauthz.Response(res.Decision, httpReq))
			if j == 0 {
				e.a, e.aDecision = resp, res.Reason
			} else {
				e.b, e.bDecision = resp, res.Reason
			}
		}
		e.differ = !proto.Equal(e.a, e.b)
		out[i] = e
	}
	return out, nil
}

// writeVersionDir writes base.yaml and tenants.yaml into a new dir.
func writeVersionDir(dir, tenants string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte(baseYAML), 0o644); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tenants.yaml"), []byte(tenants), 0o644); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	return nil
}

func (e *expectation) httpRequest(query string) *authv3.AttributeContext_HttpRequest {
	return &authv3.AttributeContext_HttpRequest{
		Method: e.req.method, Path: e.req.path + query, Headers: e.headerKeys,
		Host: "portal.example", Scheme: "https", Protocol: "HTTP/1.1",
	}
}

// normalize sorts the repeated fields whose order carries no meaning (the
// headers to remove come from a map), so two equal answers compare equal.
func normalize(r *authv3.CheckResponse) *authv3.CheckResponse {
	byKey := func(a, b *corev3.HeaderValueOption) int {
		return strings.Compare(a.GetHeader().GetKey(), b.GetHeader().GetKey())
	}
	if ok := r.GetOkResponse(); ok != nil {
		slices.SortFunc(ok.Headers, byKey)
		slices.Sort(ok.HeadersToRemove)
	}
	if d := r.GetDeniedResponse(); d != nil {
		slices.SortFunc(d.Headers, byKey)
	}
	return r
}

// stats are the counters the workers share.
type stats struct {
	requests, errors, mismatches, onlyA, onlyB atomic.Uint64

	mu   sync.Mutex
	exes []string
}

const maxExamples = 5

func (s *stats) example(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.exes) < maxExamples {
		s.exes = append(s.exes, msg)
	}
}

func (s *stats) examples() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.exes)
}

func (s *stats) check(ctx context.Context, client authv3.AuthorizationClient, e *expectation, query string) {
	resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: e.httpRequest(query)},
	}})
	if err != nil {
		if ctx.Err() != nil {
			return // the run ended while this call was in flight: not the server's doing
		}
		s.requests.Add(1)
		s.errors.Add(1)
		s.example(fmt.Sprintf("RPC error on %q: %v", e.req.name, err))
		return
	}
	s.requests.Add(1)
	got := normalize(resp)
	switch isA, isB := proto.Equal(got, e.a), proto.Equal(got, e.b); {
	case !isA && !isB:
		s.mismatches.Add(1)
		s.example(fmt.Sprintf("mismatch on %q (%s %s%s): got {%s}, want A {%s} (%s) or B {%s} (%s)",
			e.req.name, e.req.method, e.req.path, query, oneLine(got), oneLine(e.a), e.aDecision, oneLine(e.b), e.bDecision))
	case isA && !isB:
		s.onlyA.Add(1)
	case isB && !isA:
		s.onlyB.Add(1)
	}
}

func oneLine(m proto.Message) string {
	return prototext.MarshalOptions{}.Format(m)
}

// allAnswer reports whether every request now gets version v's answer.
func allAnswer(ctx context.Context, client authv3.AuthorizationClient, exps []expectation, v which) bool {
	for i := range exps {
		e := &exps[i]
		resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: e.httpRequest("")},
		}})
		if err != nil {
			return false
		}
		want := e.a
		if v == verB {
			want = e.b
		}
		if !proto.Equal(normalize(resp), want) {
			return false
		}
	}
	return true
}

// reloadCounter counts reloads; decisions are checked by the workers.
type reloadCounter struct{ ok, failed atomic.Uint64 }

func (c *reloadCounter) ObserveDecision(*engine.Request, *engine.Result, time.Duration) {}

func (c *reloadCounter) ObserveReload(_ *engine.Snapshot, err error) {
	if err != nil {
		c.failed.Add(1)
	} else {
		c.ok.Add(1)
	}
}

package extauthz_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/metrics"
)

// benchTarget is an ext_authz server over an engine loaded with a generated
// dataset, wired as `tenantgate serve` wires it (metrics observer included),
// and the dataset's request mix as Envoy would send it.
type benchTarget struct {
	srv   *extauthz.Server
	reqs  []*authv3.CheckRequest
	allow []bool
}

type benchKey struct {
	size      string
	cache     bool
	evaluator string // engine.Options.Evaluator
}

type benchOnce struct {
	once sync.Once
	t    *benchTarget
	err  error
}

var (
	benchMu      sync.Mutex
	benchTargets = map[benchKey]*benchOnce{}
)

// loadBenchTarget builds a target once per process: loading the large size
// takes seconds, and the sub-benchmarks of one size share it.
func loadBenchTarget(size tenantgen.Size, cache bool, evaluator string) (*benchTarget, error) {
	key := benchKey{size.Name, cache, evaluator}
	benchMu.Lock()
	o := benchTargets[key]
	if o == nil {
		o = &benchOnce{}
		benchTargets[key] = o
	}
	benchMu.Unlock()
	o.once.Do(func() { o.t, o.err = newBenchTarget(size, cache, evaluator) })
	return o.t, o.err
}

func newBenchTarget(size tenantgen.Size, cache bool, evaluator string) (*benchTarget, error) {
	ctx := context.Background()
	d, err := tenantgen.Shared(size)
	if err != nil {
		return nil, err
	}
	// The files are only read by Reload: once loaded they can go.
	dir, err := os.MkdirTemp("", "tenantgate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "data")
	if err := d.WriteDir(data); err != nil {
		return nil, err
	}
	secret := filepath.Join(dir, "hs256.secret")
	if err := os.WriteFile(secret, []byte("bench-secret-0123456789abcdef0123\n"), 0o600); err != nil {
		return nil, err
	}
	cacheSize := 0 // the default
	if !cache {
		cacheSize = -1
	}
	eng := engine.New(engine.Options{
		Source:    engine.Dirs{Data: data, Policies: "../../policies"},
		Identity:  &identity.Config{HS256SecretFile: secret, Leeway: time.Minute},
		Timeout:   time.Second, // generous: a loaded machine must not turn allows into 503s
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer:  metrics.New(),
		CacheSize: cacheSize,
		Evaluator: evaluator,
	})
	if err := eng.Reload(ctx); err != nil {
		return nil, err
	}
	// The IR evaluator declines a policy it cannot run as OPA does: the
	// figures must be of the evaluator they are named after.
	if want, got := cmp.Or(evaluator, engine.DefaultEvaluator()), eng.Status().Evaluator.InUse; got != want {
		return nil, fmt.Errorf("the %s evaluator is in use, want %s", got, want)
	}
	tokens := map[string]string{}
	now := time.Now()
	for _, sub := range d.Subjects() {
		if tokens[sub], err = identity.SignHS256(secret, sub, "", "", 24*time.Hour, now); err != nil {
			return nil, err
		}
	}
	t := &benchTarget{srv: extauthz.New(eng)}
	for i, r := range d.Requests {
		req := r.CheckRequest(tokens[r.User], i)
		// Decide each once: the benchmark must measure the mix it claims
		// to, and a server in steady state has its token cache warm.
		resp, err := t.srv.Check(ctx, req)
		if err != nil {
			return nil, err
		}
		if allowed := resp.GetStatus().GetCode() == 0; allowed != r.Allow {
			return nil, fmt.Errorf("%s %s as %q: allowed=%v (%s), the generator expects %v",
				r.Method, r.Path, r.User, allowed, resp.GetStatus().GetMessage(), r.Allow)
		}
		t.reqs = append(t.reqs, req)
		t.allow = append(t.allow, r.Allow)
	}
	return t, nil
}

// mix returns the allowed requests, the denied ones or all of them.
func (t *benchTarget) mix(name string) []*authv3.CheckRequest {
	if name == "mixed" {
		return t.reqs
	}
	var out []*authv3.CheckRequest
	for i, r := range t.reqs {
		if t.allow[i] == (name == "allow") {
			out = append(out, r)
		}
	}
	return out
}

// BenchmarkCheck measures the whole in-process Check path:
// extauthz.Server.Check on prebuilt Envoy-shaped CheckRequests with HS256
// tokens, rotating through the ~1,000 distinct requests of the generated mix
// (70% allowed): request -> input -> policy -> CheckResponse. cache=on is
// the server's default (after the first pass every request is a decision
// cache hit); cache=off evaluates the policy on every request, with each
// evaluator (evaluator=ir, the default, and evaluator=rego, OPA's own).
func BenchmarkCheck(b *testing.B) {
	ctx := context.Background()
	type variant struct {
		name      string
		cache     bool
		evaluator string
	}
	variants := []variant{
		{"cache=on", true, ""}, // hits never reach an evaluator
		{"cache=off/evaluator=" + engine.EvaluatorIR, false, engine.EvaluatorIR},
		{"cache=off/evaluator=" + engine.EvaluatorRego, false, engine.EvaluatorRego},
	}
	sizes, err := tenantgen.BenchSizes() // xl is opt-in: $TENANTGATE_BENCH_SIZES
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range sizes {
		b.Run("size="+size.Name, func(b *testing.B) {
			for _, mix := range []string{"allow", "deny", "mixed"} {
				b.Run("mix="+mix, func(b *testing.B) {
					for _, v := range variants {
						b.Run(v.name, func(b *testing.B) {
							t, err := loadBenchTarget(size, v.cache, v.evaluator)
							if err != nil {
								b.Fatal(err)
							}
							reqs := t.mix(mix)
							b.ReportAllocs()
							i := 0
							for b.Loop() {
								if _, err := t.srv.Check(ctx, reqs[i]); err != nil {
									b.Fatal(err)
								}
								if i++; i == len(reqs) {
									i = 0
								}
							}
						})
					}
				})
			}
		})
	}
}

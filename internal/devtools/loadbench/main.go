// Command loadbench is the load half of `make bench`: it runs ghz over real
// gRPC against tenantgate and against a no-op ext_authz server (the floor),
// with the same ~1,000 distinct Envoy-shaped CheckRequests (about 70%
// allowed), alternating the targets over several rounds, the servers pinned
// to one core and ghz to the other, and prints a markdown table: requests/s,
// p50, p99, errors, server CPU per request (from /proc/PID/stat), peak RSS,
// the p99 at half the no-op's maximum rate, and the ratios to the no-op.
// tenantgate runs with each evaluator: with its decision cache, with the
// cache off, and with the cache on a mix in which a share of the requests
// carries a fresh item id (each a cache miss, as a portal's users opening
// new items are).
//
//	loadbench run -tenantgate bin/tenantgate -noop bin/tenantgate-noop -ghz bin/ghz [-sizes small,medium,large] [-duration 8s] [-gobench go.txt]
//	loadbench benchfmt < go-test-bench-output.txt
//
// The Makefile's `bench` target builds the three binaries and runs both.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
)

const usage = `loadbench: the load benchmark of tenantgate (make bench).

Usage:
  loadbench run [flags]   ghz against tenantgate and a no-op ext_authz server; print a markdown table
  loadbench load [flags]  start, memory, edit-to-served and validate figures per size and layout
  loadbench benchfmt      read 'go test -bench' output on stdin; print it as a markdown table

Run 'loadbench run -h' for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadbench:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "run":
		cfg, err := parseConfig(args[1:], stderr)
		if err != nil {
			return err
		}
		return loadBench(ctx, cfg, stdout, stderr)
	case "load":
		return loadMain(ctx, args[1:], stdout, stderr)
	case "benchfmt":
		return benchfmt(stdin, stdout)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return flag.ErrHelp
	}
}

type config struct {
	tenantgate, noop, ghz, policies string
	sizes                           []tenantgen.Size
	duration, warmup                time.Duration
	rounds                          int
	concurrency, connections        int
	serverCPUs, clientCPUs          string
	cacheOff                        bool
	evaluators                      []string
	freshShare                      float64
	goBench                         string
	work                            string
	keep                            bool
	out                             string
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("loadbench run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var sizes, evaluators string
	fs.StringVar(&c.tenantgate, "tenantgate", "bin/tenantgate", "tenantgate binary")
	fs.StringVar(&c.noop, "noop", "bin/tenantgate-noop", "no-op ext_authz server binary (internal/devtools/loadbench/noop)")
	fs.StringVar(&c.ghz, "ghz", "bin/ghz", "ghz binary (built from internal/devtools/loadbench/ghz/go.mod)")
	fs.StringVar(&c.policies, "policies", "policies", "policies directory tenantgate serves")
	fs.StringVar(&sizes, "sizes", "small,medium,large", "comma-separated dataset sizes (small, medium, large, xl)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "length of one ghz run")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured ghz run per target before the rounds")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each loads every target once, in a rotating order")
	fs.IntVar(&c.concurrency, "concurrency", 16, "ghz concurrent calls")
	fs.IntVar(&c.connections, "connections", 2, "ghz gRPC connections (Envoy opens one per worker)")
	fs.StringVar(&c.serverCPUs, "server-cpus", "0", "taskset CPU list for the servers (\"\": unpinned)")
	fs.StringVar(&c.clientCPUs, "client-cpus", "1", "taskset CPU list for ghz (\"\": unpinned)")
	fs.BoolVar(&c.cacheOff, "cache-off", true, "also load a tenantgate with its decision cache off (--decision-cache-size -1)")
	fs.StringVar(&evaluators, "evaluators", "ir,rego", "comma-separated evaluators to load tenantgate with (serve --evaluator)")
	fs.Float64Var(&c.freshShare, "fresh-share", 0.3, "also load a tenantgate (cache on) with a mix in which this share of the requests carries a fresh item id; 0: not")
	fs.StringVar(&c.goBench, "gobench", "", "'go test -bench' output with extauthz.BenchmarkCheck, to check the in-process targets too")
	fs.StringVar(&c.work, "work", "", "directory for data, logs and ghz reports (default: a temporary one, removed after)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary work directory")
	fs.StringVar(&c.out, "out", "", "also write the markdown report to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var err error
	if c.sizes, err = tenantgen.ParseSizes(sizes); err != nil {
		return nil, err
	}
	for _, name := range strings.Split(evaluators, ",") {
		name = strings.TrimSpace(name)
		if name != "ir" && name != "rego" {
			return nil, fmt.Errorf("-evaluators %q: %q is not an evaluator; want ir, rego or both", evaluators, name)
		}
		if !slices.Contains(c.evaluators, name) {
			c.evaluators = append(c.evaluators, name)
		}
	}
	switch {
	case c.duration < time.Second:
		return nil, fmt.Errorf("-duration %s: want at least 1s", c.duration)
	case c.rounds < 1:
		return nil, fmt.Errorf("-rounds %d: want at least 1", c.rounds)
	case c.concurrency < 1 || c.connections < 1:
		return nil, errors.New("-concurrency and -connections must be positive")
	case c.freshShare < 0 || c.freshShare > 1:
		return nil, fmt.Errorf("-fresh-share %g: want a share from 0 to 1", c.freshShare)
	}
	// Pinning needs taskset and two CPUs; without them the numbers are still
	// comparable within one run, so carry on unpinned and say so.
	if c.serverCPUs != "" || c.clientCPUs != "" {
		if _, err := exec.LookPath("taskset"); err != nil || runtime.NumCPU() < 2 {
			fmt.Fprintln(stderr, "loadbench: taskset or a second CPU is missing: servers and ghz run unpinned")
			c.serverCPUs, c.clientCPUs = "", ""
		}
	}
	return &c, nil
}

// target is one server under load at one size, and what was measured.
type target struct {
	name string
	srv  *server
	// What tenantgate was run with ("" for the no-op): the evaluator, the
	// cache off, the fresh-id mix; and the ghz data file it is loaded with.
	evaluator       string
	cacheOff, fresh bool
	dataFile        string
	startup         time.Duration // process start to ready; 0 for the no-op
	allowed         float64       // share allowed when verified; -1 for the no-op
	runs            []measured    // as fast as it answers, one per round
	atRate          []measured    // at half the no-op's maximum rate, one per round
	rss             int64         // peak RSS, bytes
	// A tenantgate's own data directory (a reload of one must not make the
	// other rebuild on the same core), its HTTP address, and what one reload
	// after the rounds cost: the build as the server timed it, the time from
	// the edit to the new revision in /v1/status, and the peak RSS after it.
	dataDir, httpAddr   string
	build, editToServed time.Duration
	rssReload           int64
}

// measured is one ghz run.
type measured struct {
	rps      float64
	p50, p99 time.Duration
	calls    uint64
	errs     int
	cpu      time.Duration // the server's CPU time during the run
	client   time.Duration // ghz's own CPU time
	wall     time.Duration
}

// sizeResult is every target at one size.
type sizeResult struct {
	size    tenantgen.Size
	rate    int // the fixed rate of the latency runs, calls/s
	fresh   int // requests of the fresh-id mix that carry a fresh item id
	total   int // requests in a mix
	targets []*target
}

func loadBench(ctx context.Context, cfg *config, stdout, stderr io.Writer) (err error) {
	for _, bin := range []string{cfg.tenantgate, cfg.noop, cfg.ghz} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("missing binary (make bench builds it): %w", err)
		}
	}
	work := cfg.work
	if work == "" {
		dir, mkErr := os.MkdirTemp("", "tenantgate-loadbench-")
		if mkErr != nil {
			return fmt.Errorf("make work dir: %w", mkErr)
		}
		work = dir
		if !cfg.keep {
			// A failure names a server log in here: keep it then.
			defer func() {
				if err != nil {
					fmt.Fprintln(stderr, "loadbench: kept", dir, "for the logs")
					return
				}
				os.RemoveAll(dir)
			}()
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("make work dir: %w", err)
	}
	protoset := filepath.Join(work, "ext_authz.protoset")
	if err := writeProtoset(protoset); err != nil {
		return err
	}
	g := &ghz{bin: cfg.ghz, cpus: cfg.clientCPUs, protoset: protoset, concurrency: cfg.concurrency, connections: cfg.connections}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "loadbench: "+format+"\n", args...) }

	loadBefore := loadAverage()
	var results []*sizeResult
	for _, size := range cfg.sizes {
		r, err := benchSize(ctx, cfg, g, filepath.Join(work, size.Name), size, logf)
		if err != nil {
			return fmt.Errorf("%s: %w", size.Name, err)
		}
		results = append(results, r)
	}
	var goRows []benchRow
	if cfg.goBench != "" {
		f, err := os.Open(cfg.goBench)
		if err != nil {
			return fmt.Errorf("-gobench: %w", err)
		}
		goRows, _, err = parseBench(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("-gobench %s: %w", cfg.goBench, err)
		}
		goRows = medians(goRows)
	}
	report := markdown(cfg, results, goRows, loadBefore, loadAverage())
	fmt.Fprint(stdout, report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// benchSize generates the dataset, starts the servers, checks that they
// decide as expected, then loads them in rounds.
func benchSize(ctx context.Context, cfg *config, g *ghz, dir string, size tenantgen.Size, logf func(string, ...any)) (*sizeResult, error) {
	logf("%s: generating %d customers, %d users", size.Name, size.Customers, size.Users)
	d, err := tenantgen.Generate(size, tenantgen.DefaultSeed)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	secret := filepath.Join(dir, "hs256.secret")
	if err := writeSecret(secret); err != nil {
		return nil, err
	}
	tokens, err := mintTokens(d, secret)
	if err != nil {
		return nil, err
	}
	reqs := shape(d.Requests, tokens)
	want := make([]bool, len(d.Requests))
	for i, r := range d.Requests {
		want[i] = r.Allow
	}
	dataFile := filepath.Join(dir, "requests.json")
	if err := writeDataFile(dataFile, reqs); err != nil {
		return nil, err
	}
	res := &sizeResult{size: size, total: len(reqs)}
	// The fresh-id mix: the same requests, in the same order, a share of
	// them with a template ghz renders into a new UUID on every call.
	var freshReqs []*authv3.CheckRequest
	freshFile := filepath.Join(dir, "requests-fresh.json")
	if cfg.freshShare > 0 {
		mix, n, err := freshMix(d.Requests, cfg.freshShare, freshIDTemplate)
		if err != nil {
			return nil, err
		}
		res.fresh = n
		freshReqs = shape(mix, tokens)
		if err := writeDataFile(freshFile, freshReqs); err != nil {
			return nil, err
		}
	}

	defer func() {
		for _, t := range res.targets {
			t.srv.stop()
		}
	}()

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	noop, err := startServer(ctx, "no-op", addr, cfg.serverCPUs, filepath.Join(dir, "noop.log"), cfg.noop, "-grpc-addr", addr)
	if err != nil {
		return nil, err
	}
	res.targets = append(res.targets, &target{name: "no-op", srv: noop, allowed: -1, dataFile: dataFile})
	if err := noop.waitReady(ctx, 30*time.Second, tcpReady(addr)); err != nil {
		return nil, err
	}
	if cfg.freshShare > 0 {
		// The same no-op on the fresh-id mix: ghz renders every call of it,
		// which caps its rate, and a server answering fewer calls a second
		// spends more CPU on each; the fresh-id rows are held against this
		// floor, loaded the same way.
		res.targets = append(res.targets, &target{name: "no-op, fresh ids", srv: noop, allowed: -1, fresh: true, dataFile: freshFile})
	}

	// tenantgate as served (the cache on), on the fresh-id mix, then with
	// the cache off; each with every evaluator.
	var variants []*target
	for _, ev := range cfg.evaluators {
		variants = append(variants, &target{name: "tenantgate " + ev, evaluator: ev, dataFile: dataFile})
	}
	if cfg.freshShare > 0 {
		for _, ev := range cfg.evaluators {
			variants = append(variants, &target{name: fmt.Sprintf("tenantgate %s, %.0f%% fresh ids", ev, 100*float64(res.fresh)/float64(res.total)),
				evaluator: ev, fresh: true, dataFile: freshFile})
		}
	}
	if cfg.cacheOff {
		for _, ev := range cfg.evaluators {
			variants = append(variants, &target{name: "tenantgate " + ev + ", cache off", evaluator: ev, cacheOff: true, dataFile: dataFile})
		}
	}
	for i, t := range variants {
		dataDir := filepath.Join(dir, fmt.Sprintf("data-%d", i))
		if err := d.WriteDir(dataDir); err != nil {
			return nil, err
		}
		grpcAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		httpAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		args := []string{"serve", "--data", dataDir, "--policies", cfg.policies, "--jwt-hs256-secret-file", secret,
			"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--log-level", "warn", "--evaluator", t.evaluator}
		if t.cacheOff {
			args = append(args, "--decision-cache-size", "-1")
		}
		start := time.Now()
		srv, err := startServer(ctx, t.name, grpcAddr, cfg.serverCPUs, filepath.Join(dir, fmt.Sprintf("tenantgate-%d.log", i)), cfg.tenantgate, args...)
		if err != nil {
			return nil, err
		}
		t.srv, t.dataDir, t.httpAddr = srv, dataDir, httpAddr
		res.targets = append(res.targets, t)
		// Generous: the large tree loads on one pinned core.
		if err := srv.waitReady(ctx, 3*time.Minute, httpReady("http://"+httpAddr+"/readyz")); err != nil {
			return nil, err
		}
		t.startup = time.Since(start)
		// The IR evaluator declines a policy it cannot run exactly as OPA
		// does; the figures must say which one they measured.
		if inUse, err := evaluatorInUse("http://" + httpAddr + "/v1/status"); err != nil {
			return nil, err
		} else if inUse != t.evaluator {
			return nil, fmt.Errorf("%s: serves with the %s evaluator, not %s (see /v1/status evaluator.declined)", t.name, inUse, t.evaluator)
		}
		check := reqs
		if t.fresh {
			check = withFreshIDs(freshReqs) // a fresh id must not change a decision
		}
		if t.allowed, err = verify(ctx, grpcAddr, check, want); err != nil {
			return nil, err
		}
		logf("%s: %s ready in %.2fs; %.1f%% of the requests allowed, each as expected", size.Name, t.name, t.startup.Seconds(), 100*t.allowed)
	}

	measure := func(t *target, d time.Duration, rps int) (measured, error) {
		before, err := cpuTime(t.srv.pid())
		if err != nil {
			return measured{}, err
		}
		out := filepath.Join(dir, fmt.Sprintf("ghz-%s-%d.json", strings.ReplaceAll(strings.ReplaceAll(t.name, ",", ""), " ", "-"), time.Now().UnixNano()))
		rep, client, err := g.run(ctx, t.srv.addr, t.dataFile, t.fresh, out, d, rps)
		if err != nil {
			return measured{}, err
		}
		after, err := cpuTime(t.srv.pid())
		if err != nil {
			return measured{}, err
		}
		if err := t.srv.exited(); err != nil {
			return measured{}, err
		}
		m := measured{rps: rep.Rps, calls: rep.answered(), errs: rep.errors(cfg.concurrency), cpu: after - before, client: client, wall: rep.Total}
		if m.p50, err = rep.percentile(50); err != nil {
			return measured{}, fmt.Errorf("%s: %w", t.name, err)
		}
		if m.p99, err = rep.percentile(99); err != nil {
			return measured{}, fmt.Errorf("%s: %w", t.name, err)
		}
		return m, nil
	}

	for _, t := range res.targets {
		if _, err := measure(t, cfg.warmup, 0); err != nil {
			return nil, err
		}
	}
	// Rounds as fast as each server answers, then rounds at a fixed rate of
	// half the no-op's maximum (known only once the first rounds are done).
	// Within a round the order rotates, so that no target always follows the
	// same one, and a burst of other work on the machine hits all of them.
	rounds := func(rate int, record func(*target, measured)) error {
		n := len(res.targets)
		for round := range cfg.rounds {
			for k := range n {
				t := res.targets[(round+k)%n]
				m, err := measure(t, cfg.duration, rate)
				if err != nil {
					return err
				}
				record(t, m)
				at := "max"
				if rate > 0 {
					at = thousands(float64(rate))
				}
				logf("%s: at %s req/s, round %d/%d, %-22s %6.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %6.1f µs CPU/req  (ghz CPU %3.0f%%)",
					size.Name, at, round+1, cfg.rounds, t.name, m.rps, ms(m.p50), ms(m.p99), perCall(m.cpu, m.calls),
					100*m.client.Seconds()/m.wall.Seconds())
			}
		}
		return nil
	}
	if err := rounds(0, func(t *target, m measured) { t.runs = append(t.runs, m) }); err != nil {
		return nil, err
	}
	res.rate = max(1, int(res.targets[0].maxRPS()/2))
	if err := rounds(res.rate, func(t *target, m measured) { t.atRate = append(t.atRate, m) }); err != nil {
		return nil, err
	}
	for _, t := range res.targets {
		if t.rss, err = peakRSS(t.srv.pid()); err != nil {
			return nil, err
		}
	}
	// One reload per evaluator, as served: the cache and the mix do not
	// change what a reload costs.
	for _, t := range res.targets[1:] {
		if t.cacheOff || t.fresh {
			continue
		}
		if t.build, t.editToServed, err = reloadOnce(ctx, t.dataDir, "http://"+t.httpAddr+"/v1/status"); err != nil {
			return nil, fmt.Errorf("%s: reload: %w", t.name, err)
		}
		if t.rssReload, err = peakRSS(t.srv.pid()); err != nil {
			return nil, err
		}
		logf("%s: %s reloaded: built in %.2fs, %.2fs from the edit; peak RSS %.0f MiB before, %.0f MiB after", size.Name, t.name,
			t.build.Seconds(), t.editToServed.Seconds(),
			float64(t.rss)/(1<<20), float64(t.rssReload)/(1<<20))
	}
	return res, nil
}

// evaluatorInUse reads which evaluator a tenantgate decides with from its
// /v1/status.
func evaluatorInUse(statusURL string) (string, error) {
	resp, err := http.Get(statusURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct {
		Evaluator struct {
			InUse string `json:"in_use"`
		} `json:"evaluator"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", fmt.Errorf("%s: %w", statusURL, err)
	}
	if st.Evaluator.InUse == "" {
		return "", fmt.Errorf("%s: no evaluator.in_use", statusURL)
	}
	return st.Evaluator.InUse, nil
}

// reloadOnce edits the largest data file (a comment appended: the data is
// the same, its digest is not; tenantgate re-parses only the file that
// changed, so the largest is the costliest one-file edit) and returns how long the new snapshot took to
// build, as the server timed it (/v1/status build_seconds), and how long
// from the edit until /v1/status showed the new revision: what an operator
// sees, the debounce and the quiet window included.
func reloadOnce(ctx context.Context, dataDir, statusURL string) (build, editToServed time.Duration, err error) {
	type status struct {
		Revision string  `json:"revision"`
		Build    float64 `json:"build_seconds"`
	}
	get := func() (status, error) {
		var st status
		resp, err := http.Get(statusURL)
		if err != nil {
			return st, err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return st, fmt.Errorf("%s: %w", statusURL, err)
		}
		return st, nil
	}
	before, err := get()
	if err != nil {
		return 0, 0, err
	}
	files, err := filepath.Glob(filepath.Join(dataDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return 0, 0, fmt.Errorf("no data file in %s (%v)", dataDir, err)
	}
	var largest int64 = -1
	for _, name := range files {
		if fi, err := os.Stat(name); err == nil && fi.Size() > largest {
			largest, files[0] = fi.Size(), name
		}
	}
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if _, err := f.WriteString("# edited by loadbench to measure a reload\n"); err != nil {
		f.Close()
		return 0, 0, err
	}
	if err := f.Close(); err != nil {
		return 0, 0, err
	}
	for deadline := start.Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		if st, err := get(); err == nil && st.Revision != before.Revision {
			return time.Duration(st.Build * float64(time.Second)), time.Since(start), nil
		}
	}
	return 0, 0, fmt.Errorf("revision still %s 3 minutes after editing %s", before.Revision, files[0])
}

// writeSecret writes a fresh random HS256 secret.
func writeSecret(path string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("make secret: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	return nil
}

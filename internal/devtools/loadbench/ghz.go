package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// checkMethod is the RPC under load, as ghz names it.
const checkMethod = "envoy.service.auth.v3.Authorization.Check"

// ghz runs the load generator: the pinned ghz binary (internal/devtools/loadbench/ghz),
// with the request mix as its data file (ghz sends the array's messages in
// turn) and the ext_authz descriptors as a protoset, so the servers need no
// reflection.
type ghz struct {
	bin         string
	cpus        string // taskset CPU list; "" runs unpinned
	protoset    string
	concurrency int
	connections int
}

// ghzReport is the part of ghz's JSON report the benchmark reads. Durations
// are in nanoseconds.
type ghzReport struct {
	Total               time.Duration  `json:"total"`
	Rps                 float64        `json:"rps"`
	StatusCodeDist      map[string]int `json:"statusCodeDistribution"`
	ErrorDist           map[string]int `json:"errorDistribution"`
	LatencyDistribution []struct {
		Percentage int           `json:"percentage"`
		Latency    time.Duration `json:"latency"`
	} `json:"latencyDistribution"`
}

// percentile is the latency at p percent (ghz reports 10, 25, 50, 75, 90,
// 95 and 99), or an error when ghz did not report it (no successful call).
func (r *ghzReport) percentile(p int) (time.Duration, error) {
	for _, l := range r.LatencyDistribution {
		if l.Percentage == p {
			return l.Latency, nil
		}
	}
	return 0, fmt.Errorf("ghz reported no p%d latency", p)
}

// errors counts the calls that failed (tenantgate's denies are not errors:
// a deny is an OK call carrying a denied CheckResponse). The calls still in
// flight when ghz closes its connections at the end of a timed run fail on
// the client's side; they are not the server's failures and are left out,
// up to one per concurrent call.
func (r *ghzReport) errors(concurrency int) int {
	n, teardown := 0, 0
	for msg, c := range r.ErrorDist {
		if strings.Contains(msg, "use of closed network connection") || strings.Contains(msg, "client connection is closing") {
			teardown += c
		} else {
			n += c
		}
	}
	return n + max(0, teardown-concurrency)
}

// answered counts the calls the server answered.
func (r *ghzReport) answered() uint64 { return uint64(r.StatusCodeDist["OK"]) }

func parseGHZReport(b []byte) (*ghzReport, error) {
	var r ghzReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ghz report: %w", err)
	}
	if r.answered() == 0 {
		return nil, fmt.Errorf("ghz report: no call answered (errors: %v)", r.ErrorDist)
	}
	return &r, nil
}

// run loads target for d, at most rps calls per second (0: as fast as the
// server answers), and returns ghz's report and the CPU time ghz itself
// used (to tell when the load generator, not the server, was the limit).
// A templated data file (the fresh-id mix: freshIDTemplate) is rendered by
// ghz on every call; any other is parsed once, as rendering costs ghz CPU.
func (g *ghz) run(ctx context.Context, target, dataFile string, templated bool, out string, d time.Duration, rps int) (*ghzReport, time.Duration, error) {
	args := []string{
		"--insecure",
		"--protoset", g.protoset,
		"--call", checkMethod,
		"--data-file", dataFile,
	}
	if !templated {
		args = append(args, "--disable-template-functions", "--disable-template-data")
	}
	args = append(args,
		"--concurrency", strconv.Itoa(g.concurrency),
		"--connections", strconv.Itoa(g.connections),
		"--duration", d.String(),
		"--cpus", "1",
		"--format", "json",
		"--output", out,
	)
	if rps > 0 {
		args = append(args, "--rps", strconv.Itoa(rps))
	}
	args = append(args, target)
	cmd := pinned(ctx, g.cpus, g.bin, args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("ghz against %s: %w: %s", target, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, 0, fmt.Errorf("ghz against %s: %w", target, err)
	}
	r, err := parseGHZReport(b)
	if err != nil {
		return nil, 0, fmt.Errorf("ghz against %s (%s): %w", target, out, err)
	}
	used := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, used, nil
}

// pinned returns a command for bin that runs on the given CPUs (a taskset
// list) or anywhere when cpus is "". taskset execs bin, so the process id is
// bin's own and /proc reads its counters.
func pinned(ctx context.Context, cpus, bin string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.CommandContext(ctx, bin, args...)
	}
	return exec.CommandContext(ctx, "taskset", append([]string{"-c", cpus, bin}, args...)...)
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
)

// series is the runs of one target under one load, one per round.
type series []measured

// rps, p50 and p99 are medians over the rounds: a burst of other work on the
// machine spoils one round, not the figure.
func (s series) rps() float64 {
	xs := make([]float64, len(s))
	for i, m := range s {
		xs[i] = m.rps
	}
	return median(xs)
}

func (s series) p50() time.Duration {
	return s.medianDur(func(m measured) time.Duration { return m.p50 })
}

func (s series) p99() time.Duration {
	return s.medianDur(func(m measured) time.Duration { return m.p99 })
}

func (s series) medianDur(f func(measured) time.Duration) time.Duration {
	xs := make([]float64, len(s))
	for i, m := range s {
		xs[i] = float64(f(m))
	}
	return time.Duration(median(xs))
}

// cpuPerCall is the server's CPU time over all rounds divided by all the
// calls it answered: the figure that does not depend on the load generator.
func (s series) cpuPerCall() float64 {
	var cpu time.Duration
	var calls uint64
	for _, m := range s {
		cpu += m.cpu
		calls += m.calls
	}
	return perCall(cpu, calls)
}

func (s series) errors() int {
	n := 0
	for _, m := range s {
		n += m.errs
	}
	return n
}

// maxRPS is the target's median rate as fast as it answers.
func (t *target) maxRPS() float64 { return series(t.runs).rps() }

func perCall(cpu time.Duration, calls uint64) float64 {
	if calls == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(calls)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// thousands formats n with comma separators: 12,345.
func thousands(n float64) string {
	var b strings.Builder
	if n < 0 {
		b.WriteByte('-')
		n = -n
	}
	s := strconv.FormatInt(int64(n+0.5), 10)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// markdown renders the results: the set-up, the table, and the issue's
// targets as measured in this run.
func markdown(cfg *config, results []*sizeResult, loadBefore, loadAfter string) string {
	var b bytes.Buffer
	pin := fmt.Sprintf("servers pinned to CPU %s, ghz to CPU %s", cfg.serverCPUs, cfg.clientCPUs)
	if cfg.serverCPUs == "" {
		pin = "unpinned"
	}
	fmt.Fprintf(&b, "### Load benchmark: ghz over gRPC, %s\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "%s; %s, %d CPUs, %s; load average %s before, %s after. %d rounds of %s per target (order rotating), "+
		"ghz concurrency %d over %d connections, %d distinct Envoy-shaped CheckRequests with HS256 tokens.\n\n",
		pin, cpuModel(), runtime.NumCPU(), runtime.Version(), loadBefore, loadAfter, cfg.rounds, cfg.duration,
		cfg.concurrency, cfg.connections, tenantgen.RequestCount)
	b.WriteString("As fast as each server answers (ghz's maximum):\n\n")
	b.WriteString("| size | server | start-up s | allowed | peak RSS MiB | reload s: build / edit to served | peak RSS with a reload MiB | req/s | p50 ms | p99 ms | errors | CPU µs/req | CPU × no-op |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range results {
		noop := series(r.targets[0].runs)
		for _, t := range r.targets {
			startup, allowed, reload, rssReload := "–", "–", "–", "–"
			if t.startup > 0 {
				startup = fmt.Sprintf("%.2f", t.startup.Seconds())
			}
			if t.editToServed > 0 {
				reload = fmt.Sprintf("%.2f / %.2f", t.build.Seconds(), t.editToServed.Seconds())
				rssReload = fmt.Sprintf("%.0f", float64(t.rssReload)/(1<<20))
			}
			if t.allowed >= 0 {
				allowed = fmt.Sprintf("%.0f%%", 100*t.allowed)
			}
			runs := series(t.runs)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f | %s | %s | %s | %.2f | %.2f | %d | %.1f | %s |\n",
				r.size.Name, t.name, startup, allowed, float64(t.rss)/(1<<20), reload, rssReload, thousands(runs.rps()), ms(runs.p50()),
				ms(runs.p99()), runs.errors(), runs.cpuPerCall(), ratio(runs.cpuPerCall(), noop.cpuPerCall()))
		}
	}
	b.WriteString("\nAt a fixed rate, half the no-op's maximum (ghz --rps):\n\n")
	b.WriteString("| size | server | rate req/s | achieved req/s | p50 ms | p99 ms | p99 × no-op | errors | CPU µs/req | CPU × no-op |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range results {
		noop := series(r.targets[0].atRate)
		for _, t := range r.targets {
			at := series(t.atRate)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.2f | %.2f | %s | %d | %.1f | %s |\n",
				r.size.Name, t.name, thousands(float64(r.rate)), thousands(at.rps()), ms(at.p50()), ms(at.p99()),
				ratio(ms(at.p99()), ms(noop.p99())), at.errors(), at.cpuPerCall(), ratio(at.cpuPerCall(), noop.cpuPerCall()))
		}
	}
	b.WriteString("\nreq/s, p50, p99: medians over the rounds. CPU µs/req: the server's user+system CPU time over all rounds " +
		"(utime+stime, /proc/PID/stat) divided by the calls it answered. peak RSS: VmHWM (/proc/PID/status) after the rounds. " +
		"reload: after the rounds, the largest data file edited (a comment appended); build: the new snapshot's build time as the server " +
		"timed it (/v1/status build_seconds: read, parse, validate, compile, on the one pinned core); edit to served: from the " +
		"write to the new revision in /v1/status, the debounce and the quiet window (2 × --debounce, 100 ms) included; " +
		"peak RSS with a reload: VmHWM after it (the old snapshot serves while the new one is built). " +
		"start-up: process start to /readyz (load, validate, compile) on the one pinned core. allowed: the share of the " +
		"requests allowed, each checked against the decision the generator expects. errors: failed calls (a deny is not an error).\n")
	b.WriteString(targets(results))
	return b.String()
}

// targets checks this run against the performance targets (tenantgate help performance).
func targets(results []*sizeResult) string {
	bySize := map[string]*sizeResult{}
	for _, r := range results {
		bySize[r.size.Name] = r
	}
	var b bytes.Buffer
	b.WriteString("\nPerformance targets, as measured in this run:\n\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	if len(results) == 0 {
		return ""
	}
	for ti := 1; ti < len(results[0].targets); ti++ {
		name := results[0].targets[ti].name
		cpu := func(r *sizeResult, i int) float64 { return series(r.targets[i].runs).cpuPerCall() }
		for _, size := range []string{"medium", "large"} {
			if r := bySize[size]; r != nil {
				x := cpu(r, ti) / cpu(r, 0)
				fmt.Fprintf(&b, "- %s, %s: server CPU per request %.2f× the no-op's (target ≤ 2×): %s\n", name, size, x, verdict(x <= 2))
			}
		}
		if s, l := bySize["small"], bySize["large"]; s != nil && l != nil {
			g := cpu(l, ti)/cpu(s, ti) - 1
			fmt.Fprintf(&b, "- %s: CPU per request at large vs small %+.0f%% (target within 15%%): %s\n", name, 100*g, verdict(g <= 0.15))
		}
		if s, x := bySize["small"], bySize["xl"]; s != nil && x != nil {
			g := cpu(x, ti)/cpu(s, ti) - 1
			fmt.Fprintf(&b, "- %s: CPU per request at xl vs small %+.0f%% (target within 10%%): %s\n", name, 100*g, verdict(g <= 0.10))
		}
		for _, r := range results {
			x := ms(series(r.targets[ti].atRate).p99()) / ms(series(r.targets[0].atRate).p99())
			fmt.Fprintf(&b, "- %s, %s: p99 at %s req/s %.2f× the no-op's (target ≤ 2×): %s\n", name, r.size.Name, thousands(float64(r.rate)), x, verdict(x <= 2))
		}
		if l := bySize["large"]; l != nil {
			t := l.targets[ti]
			fmt.Fprintf(&b, "- %s, large: start-up %.2f s on one core (target ≤ 3 s): %s; peak RSS %.0f MiB (target ≤ 250 MiB): %s\n",
				name, t.startup.Seconds(), verdict(t.startup <= 3*time.Second), float64(t.rss)/(1<<20), verdict(t.rss <= 250<<20))
			fmt.Fprintf(&b, "- %s, large: a reload built in %.2f s on one core (target ≤ 2 s): %s (%.2f s from the edit to serving it); peak RSS with it %.0f MiB (target ≤ 250 MiB): %s\n",
				name, t.build.Seconds(), verdict(t.build <= 2*time.Second), t.editToServed.Seconds(), float64(t.rssReload)/(1<<20), verdict(t.rssReload <= 250<<20))
		}
	}
	return b.String()
}

// loadAverage is the 1-minute load average, or "?": other work on the
// machine shows in the numbers, so the report says how busy it was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

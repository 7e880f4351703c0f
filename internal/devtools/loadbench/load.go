package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
)

// The load half of the memory and start-up figures (issue 14): for each size
// and layout, tenantgate serve is started on the generated tree and timed to
// its first /readyz 200; its resident memory is read once settled and at the
// peak of start-up; then one file is edited (a user added) and the time until
// /v1/status shows the new revision is taken, with the peak resident memory
// of that reload alone (the kernel's high-water mark is reset before the
// edit); and `tenantgate validate` of the same tree is timed. Nothing here is
// asserted: the figures are printed beside the targets.

// The targets of issue 14, at xl.
const (
	targetReady        = 5 * time.Second
	targetSettled      = 300 << 20
	targetPeakRatio    = 1.5
	targetEditSplit    = time.Second
	targetEditBigFile  = 5 * time.Second
	targetValidate     = 5 * time.Second
	bundleLayout       = "bundle"
	settleAfterReady   = 2 * time.Second
	loadBenchReadyWait = 5 * time.Minute
)

type loadConfig struct {
	tenantgate, policies string
	sizes                []tenantgen.Size
	layouts              []string
	repeat               int
	cpus                 string
	work                 string
	out                  string
}

// loadFigures is what one start, one edit and one validate measured.
type loadFigures struct {
	size           tenantgen.Size
	layout         string
	files          int
	bytes          int64
	ready          time.Duration // process start to the first /readyz 200
	readyCPU       time.Duration // the CPU time the server used by then
	editCPU        time.Duration // the CPU time the server used from the edit to serving it
	validateCPU    time.Duration
	settled        int64  // VmRSS once settled after start
	peakStart      int64  // VmHWM at start
	edited         string // the file edited, its size
	editedBytes    int64
	editToServed   time.Duration // edit to the new revision in /v1/status
	build          time.Duration // the reload's build, as the server timed it
	peakReload     int64         // VmHWM during the reload alone
	settledReload  int64         // VmRSS once settled after the reload
	validate       time.Duration // tenantgate validate, wall
	validatePeak   int64         // its max RSS
	readyAll       []time.Duration
	editToServeAll []time.Duration
}

func parseLoadConfig(args []string, stderr io.Writer) (*loadConfig, error) {
	fs := flag.NewFlagSet("loadbench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadConfig
	var sizes, layouts string
	fs.StringVar(&c.tenantgate, "tenantgate", "bin/tenantgate", "tenantgate binary")
	fs.StringVar(&c.policies, "policies", "policies", "policies directory")
	fs.StringVar(&sizes, "sizes", "small,medium,large", "comma-separated dataset sizes (small, medium, large, xl)")
	fs.StringVar(&layouts, "layouts", "two,split,bundle", "comma-separated layouts: two (customers.yaml, users.yaml), split (a file per root customer), bundle (the two files as a bundle), default")
	fs.IntVar(&c.repeat, "repeat", 1, "starts and edits per size and layout (the median is shown)")
	fs.StringVar(&c.cpus, "cpus", "", "taskset CPU list for tenantgate (\"\": unpinned)")
	fs.StringVar(&c.work, "work", "", "directory for data and logs (default: a temporary one, removed after)")
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
	for _, l := range strings.Split(layouts, ",") {
		l = strings.TrimSpace(l)
		if l != bundleLayout && !slices.Contains(tenantgen.Layouts(), tenantgen.Layout(l)) {
			return nil, fmt.Errorf("unknown layout %q: want two, split, bundle or default", l)
		}
		c.layouts = append(c.layouts, l)
	}
	if c.repeat < 1 {
		return nil, fmt.Errorf("-repeat %d: want at least 1", c.repeat)
	}
	return &c, nil
}

func loadMain(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseLoadConfig(args, stderr)
	if err != nil {
		return err
	}
	if _, err := os.Stat(cfg.tenantgate); err != nil {
		return fmt.Errorf("missing binary (make bench builds it): %w", err)
	}
	work := cfg.work
	if work == "" {
		if work, err = os.MkdirTemp("", "tenantgate-loadbench-load-"); err != nil {
			return fmt.Errorf("make work dir: %w", err)
		}
		defer func() {
			if err != nil {
				fmt.Fprintln(stderr, "loadbench: kept", work, "for the logs")
				return
			}
			os.RemoveAll(work)
		}()
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "loadbench: "+format+"\n", args...) }
	loadBefore := loadAverage()
	var all []*loadFigures
	for _, size := range cfg.sizes {
		logf("%s: generating %d customers, %d users", size.Name, size.Customers, size.Users)
		d, err := tenantgen.Generate(size, tenantgen.DefaultSeed)
		if err != nil {
			return err
		}
		for _, layout := range cfg.layouts {
			f, err := loadOne(ctx, cfg, d, filepath.Join(work, size.Name+"-"+layout), layout, logf)
			if err != nil {
				return fmt.Errorf("%s %s: %w", size.Name, layout, err)
			}
			all = append(all, f)
		}
	}
	report := loadMarkdown(cfg, all, loadBefore, loadAverage())
	fmt.Fprint(stdout, report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

func loadOne(ctx context.Context, cfg *loadConfig, d *tenantgen.Dataset, dir, layout string, logf func(string, ...any)) (*loadFigures, error) {
	f := &loadFigures{size: d.Size, layout: layout}
	dataDir := filepath.Join(dir, "data")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	l := tenantgen.Layout(layout)
	if layout == bundleLayout {
		l = tenantgen.LayoutTwo
	}
	if err := d.WriteLayout(dataDir, l); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dataDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	f.files = len(names)
	for _, n := range names {
		if fi, err := os.Stat(n); err == nil {
			f.bytes += fi.Size()
			if fi.Size() > f.editedBytes {
				f.edited, f.editedBytes = n, fi.Size()
			}
		}
	}
	if layout == string(tenantgen.LayoutSplit) {
		// One of the split files, not the largest: a typical edit.
		f.edited = names[len(names)/2]
		fi, err := os.Stat(f.edited)
		if err != nil {
			return nil, err
		}
		f.editedBytes = fi.Size()
	}
	source := []string{"--data", dataDir, "--policies", cfg.policies}
	if layout == bundleLayout {
		out := filepath.Join(dir, "bundle.tar.gz")
		start := time.Now()
		// By the binary, not in this process: a child's peak RSS as the
		// kernel reports it includes what its parent held when it forked.
		if b, err := pinned(ctx, cfg.cpus, cfg.tenantgate, "bundle", "build", "--data", dataDir, "--policies", cfg.policies, "-o", out).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("bundle build: %w: %s", err, b)
		}
		fi, err := os.Stat(out)
		if err != nil {
			return nil, err
		}
		logf("%s %s: bundle built in %.1fs, %d bytes", d.Size.Name, layout, time.Since(start).Seconds(), fi.Size())
		source = []string{"--bundle", out, "--bundle-insecure-skip-verification"}
		f.edited, f.bytes, f.files = "", fi.Size(), 1
	}

	for i := range cfg.repeat {
		if err := startEditStop(ctx, cfg, f, dir, source, i, logf); err != nil {
			return nil, err
		}
	}
	f.ready = medianDuration(f.readyAll)
	if len(f.editToServeAll) > 0 {
		f.editToServed = medianDuration(f.editToServeAll)
	}

	if layout != bundleLayout {
		start := time.Now()
		cmd := pinned(ctx, cfg.cpus, cfg.tenantgate, "validate", "--data", dataDir, "--policies", cfg.policies)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("validate: %w", err)
		}
		// The peak is polled: the rusage of a child counts what this
		// (large) process held when it forked. Polled every 20 ms, it can
		// miss the last moments of the run.
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
	poll:
		for {
			select {
			case err = <-done:
				break poll
			case <-time.After(20 * time.Millisecond):
				if hwm, err := peakRSS(cmd.Process.Pid); err == nil {
					f.validatePeak = max(f.validatePeak, hwm)
				}
			}
		}
		f.validate = time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("validate: %w: %s", err, out.String())
		}
		f.validateCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		logf("%s %s: validate in %.2fs, max RSS %s", d.Size.Name, layout, f.validate.Seconds(), mib(f.validatePeak))
	}
	return f, nil
}

// startEditStop starts tenantgate on the tree, measures the start, edits
// one file (a user appended to its users mapping), measures the reload, and
// stops it.
func startEditStop(ctx context.Context, cfg *loadConfig, f *loadFigures, dir string, source []string, round int, logf func(string, ...any)) error {
	grpcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	secret := filepath.Join(dir, "hs256.secret")
	if err := writeSecret(secret); err != nil {
		return err
	}
	args := append([]string{"serve", "--jwt-hs256-secret-file", secret, "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--log-level", "warn"}, source...)
	start := time.Now()
	srv, err := startServer(ctx, "tenantgate", grpcAddr, cfg.cpus, filepath.Join(dir, fmt.Sprintf("tenantgate-%d.log", round)), cfg.tenantgate, args...)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.waitReady(ctx, loadBenchReadyWait, httpReady("http://"+httpAddr+"/readyz")); err != nil {
		return err
	}
	ready := time.Since(start)
	f.readyAll = append(f.readyAll, ready)
	pid := srv.pid()
	if cpu, err := cpuTime(pid); err == nil {
		f.readyCPU = max(f.readyCPU, cpu)
	}
	time.Sleep(settleAfterReady)
	settled, err := statusKB(pid, "VmRSS:")
	if err != nil {
		return err
	}
	peak, err := peakRSS(pid)
	if err != nil {
		return err
	}
	f.settled, f.peakStart = max(f.settled, settled), max(f.peakStart, peak)
	logf("%s %s: ready in %.2fs (CPU %.2fs); RSS settled %s, peak %s", f.size.Name, f.layout, ready.Seconds(), f.readyCPU.Seconds(), mib(settled), mib(peak))
	if f.edited == "" {
		return nil
	}
	// The high-water mark from here on is the reload's alone.
	if err := os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS: %w", err)
	}
	cpuBefore, err := cpuTime(pid)
	if err != nil {
		return err
	}
	build, took, err := editAndWait(ctx, f.edited, round, "http://"+httpAddr+"/v1/status")
	if err != nil {
		return err
	}
	if cpu, err := cpuTime(pid); err == nil {
		f.editCPU = max(f.editCPU, cpu-cpuBefore)
	}
	f.editToServeAll = append(f.editToServeAll, took)
	f.build = max(f.build, build)
	time.Sleep(settleAfterReady)
	if peak, err = peakRSS(pid); err != nil {
		return err
	}
	if settled, err = statusKB(pid, "VmRSS:"); err != nil {
		return err
	}
	f.peakReload, f.settledReload = max(f.peakReload, peak), max(f.settledReload, settled)
	logf("%s %s: edit to %s in force after %.2fs (build %.2fs); reload peak RSS %s, settled %s", f.size.Name, f.layout,
		filepath.Base(f.edited), took.Seconds(), build.Seconds(), mib(peak), mib(settled))
	return nil
}

// editAndWait appends a user to the file (the generated files end with
// their users mapping) and waits for /v1/status to show a new revision.
func editAndWait(ctx context.Context, path string, round int, statusURL string) (build, took time.Duration, err error) {
	type status struct {
		Revision string  `json:"revision"`
		Build    float64 `json:"build_seconds"`
		Error    string  `json:"last_reload_error"`
	}
	get := func() (status, error) {
		var st status
		resp, err := http.Get(statusURL)
		if err != nil {
			return st, err
		}
		defer resp.Body.Close()
		return st, json.NewDecoder(resp.Body).Decode(&st)
	}
	before, err := get()
	if err != nil {
		return 0, 0, err
	}
	customer := "dist-1"
	if root, ok := strings.CutPrefix(filepath.Base(path), "tree-"); ok {
		customer = strings.TrimSuffix(root, ".yaml")
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	_, err = fmt.Fprintf(fh, "  loadbench-edit-%d@%s.example:\n    customer: %s\n    role: company-user\n", round, customer, customer)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, 0, err
	}
	for deadline := start.Add(loadBenchReadyWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		st, err := get()
		if err != nil {
			continue
		}
		if st.Error != "" {
			return 0, 0, errors.New("the edit was refused: " + st.Error)
		}
		if st.Revision != before.Revision {
			return time.Duration(st.Build * float64(time.Second)), time.Since(start), nil
		}
	}
	return 0, 0, fmt.Errorf("revision still %s after editing %s", before.Revision, path)
}

// statusKB reads one "Key: N kB" line of /proc/PID/status, in bytes.
func statusKB(pid int, key string) (int64, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, key)
}

func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func holds(ok bool) string {
	if ok {
		return "holds"
	}
	return "**misses**"
}

// loadMarkdown prints the figures, then, for xl, each target of issue 14
// with its figure and whether it holds.
func loadMarkdown(cfg *loadConfig, all []*loadFigures, loadBefore, loadAfter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### Start, memory and reload (loadbench load)\n\n")
	fmt.Fprintf(&b, "%s, %d CPUs, %s; load average %s before, %s after (the machine is shared: other work shows in the times, not in the memory); tenantgate pinned to CPUs %q; median of %d start(s) per row.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), loadBefore, loadAfter, cfg.cpus, cfg.repeat)
	b.WriteString("Times are wall-clock with the server's CPU time in brackets: on a busy machine the wall time stretches, the CPU time much less.\n\n")
	b.WriteString("| size | layout | files | MB | ready (CPU) | RSS settled | peak at start | edited file | edit in force (CPU) | reload peak | RSS after reload | validate (CPU) | validate peak |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
	for _, f := range all {
		edit, editIn, rpeak, rset := "-", "-", "-", "-"
		if f.edited != "" {
			edit = fmt.Sprintf("%s (%.1f MB)", filepath.Base(f.edited), float64(f.editedBytes)/1e6)
			editIn = fmt.Sprintf("%.2f s (%.2f)", f.editToServed.Seconds(), f.editCPU.Seconds())
			rpeak = fmt.Sprintf("%s (%.2fx)", mib(f.peakReload), float64(f.peakReload)/float64(f.settled))
			rset = mib(f.settledReload)
		}
		val, valPeak := "-", "-"
		if f.validate > 0 {
			val, valPeak = fmt.Sprintf("%.2f s (%.2f)", f.validate.Seconds(), f.validateCPU.Seconds()), mib(f.validatePeak)
			if f.validatePeak == 0 {
				valPeak = "(too quick to poll)"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.2f s (%.2f) | %s | %s (%.2fx) | %s | %s | %s | %s | %s | %s |\n",
			f.size.Name, f.layout, f.files, float64(f.bytes)/1e6, f.ready.Seconds(), f.readyCPU.Seconds(), mib(f.settled),
			mib(f.peakStart), float64(f.peakStart)/float64(f.settled), edit, editIn, rpeak, rset, val, valPeak)
	}
	var targets []string
	for _, f := range all {
		if f.size.Name != tenantgen.XL.Name {
			continue
		}
		tag := f.size.Name + " " + f.layout
		if f.layout == string(tenantgen.LayoutSplit) || f.layout == bundleLayout {
			targets = append(targets, fmt.Sprintf("| %s: ready | <= %.0f s | %.2f s (CPU %.2f s) | %s |", tag, targetReady.Seconds(), f.ready.Seconds(), f.readyCPU.Seconds(), holds(f.ready <= targetReady)))
		}
		targets = append(targets,
			fmt.Sprintf("| %s: RSS settled | <= %s | %s | %s |", tag, mib(targetSettled), mib(f.settled), holds(f.settled <= targetSettled)),
			fmt.Sprintf("| %s: peak RSS at start | <= %.1fx settled | %.2fx | %s |", tag, targetPeakRatio, float64(f.peakStart)/float64(f.settled), holds(float64(f.peakStart) <= targetPeakRatio*float64(f.settled))))
		if f.edited != "" {
			want := targetEditSplit
			if f.layout != string(tenantgen.LayoutSplit) {
				want = targetEditBigFile
			}
			targets = append(targets,
				fmt.Sprintf("| %s: peak RSS at reload | <= %.1fx settled | %.2fx | %s |", tag, targetPeakRatio, float64(f.peakReload)/float64(f.settled), holds(float64(f.peakReload) <= targetPeakRatio*float64(f.settled))),
				fmt.Sprintf("| %s: edit to a %.1f MB file in force | <= %.0f s | %.2f s (CPU %.2f s) | %s |", tag, float64(f.editedBytes)/1e6, want.Seconds(), f.editToServed.Seconds(), f.editCPU.Seconds(), holds(f.editToServed <= want)))
		}
		if f.layout == string(tenantgen.LayoutSplit) {
			targets = append(targets, fmt.Sprintf("| %s: validate | <= %.0f s | %.2f s (CPU %.2f s) | %s |", tag, targetValidate.Seconds(), f.validate.Seconds(), f.validateCPU.Seconds(), holds(f.validate <= targetValidate)))
		}
	}
	if len(targets) > 0 {
		b.WriteString("\n#### Targets at xl (issue 14)\n\n| target | wanted | measured | |\n|---|---|---:|---|\n")
		b.WriteString(strings.Join(targets, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

package decisionlog_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/decisionlog"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
)

const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZUBjb250b3NvLmV4YW1wbGUifQ.c2VjcmV0LXNpZ25hdHVyZQ"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// eventually polls cond for at most limit: the writer is asynchronous and
// the machine may be loaded, so the bound is generous and never asserted on.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for start := time.Now(); time.Since(start) < limit; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %v", what, limit)
}

func allow(user, customer string, hdrs ...decision.Header) engine.Result {
	return engine.Result{
		Decision: decision.Decision{Allowed: true, Status: 200, Reason: decision.ReasonAllowed, Headers: hdrs},
		User:     user, Customer: customer, Revision: "rev-1",
	}
}

func deny(status int, reason, user, customer string) engine.Result {
	return engine.Result{
		Decision: decision.Decision{Status: status, Reason: reason, Headers: []decision.Header{{Name: decision.HeaderReason, Value: reason}}},
		User:     user, Customer: customer, Revision: "rev-1",
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestLines(t *testing.T) {
	long := "/api/v1/customers/contoso/users/" + strings.Repeat("a", 9000)
	dryRun := deny(403, decision.ReasonOutsideTenant, "alice@contoso.example", "northwind")
	dryRun.DryRun, dryRun.Denied = true, dryRun.Decision
	dryRun.Decision = decision.Decision{Allowed: true, Status: 200, Reason: decision.ReasonAllowed,
		Headers: []decision.Header{{Name: decision.HeaderDryRunDeny, Value: decision.ReasonOutsideTenant}}}

	tests := []struct {
		name    string
		req     engine.Request
		res     engine.Result
		elapsed time.Duration
		want    map[string]any // every field of the line
	}{
		{
			name: "allow with query", elapsed: 42 * time.Microsecond,
			req: engine.Request{Method: "GET", Path: "/api/v1/customers/contoso/users?page=2&q=%22x%22", Authorization: "Bearer " + token},
			res: allow("alice@contoso.example", "contoso", decision.Header{Name: decision.HeaderUser, Value: "alice@contoso.example"}),
			want: map[string]any{"user": "alice@contoso.example", "method": "GET", "path": "/api/v1/customers/contoso/users?page=2&q=%22x%22",
				"customer": "contoso", "result": "allow", "status": 200.0, "reason": "allowed", "dry_run": false, "latency_us": 42.0, "revision": "rev-1"},
		},
		{
			name: "deny", elapsed: 1500 * time.Microsecond,
			req: engine.Request{Method: "DELETE", Path: "/api/v1/customers/northwind/users", Authorization: "Bearer " + token},
			res: deny(403, decision.ReasonOutsideTenant, "alice@contoso.example", "northwind"),
			want: map[string]any{"user": "alice@contoso.example", "method": "DELETE", "path": "/api/v1/customers/northwind/users",
				"customer": "northwind", "result": "deny", "status": 403.0, "reason": "outside_tenant", "dry_run": false, "latency_us": 1500.0, "revision": "rev-1"},
		},
		{
			name: "unauthenticated: the token is not the user",
			req:  engine.Request{Method: "GET", Path: "/api/v1/customers/contoso/users", Authorization: "Bearer " + token + "x"},
			res:  deny(401, decision.ReasonUnauthenticated, "", "contoso"),
			want: map[string]any{"user": "", "method": "GET", "path": "/api/v1/customers/contoso/users",
				"customer": "contoso", "result": "deny", "status": 401.0, "reason": "unauthenticated", "dry_run": false, "latency_us": 0.0, "revision": "rev-1"},
		},
		{
			name: "dry run logs the policy's deny",
			req:  engine.Request{Method: "GET", Path: "/api/v1/customers/northwind/users", Authorization: "Bearer " + token},
			res:  dryRun,
			want: map[string]any{"user": "alice@contoso.example", "method": "GET", "path": "/api/v1/customers/northwind/users",
				"customer": "northwind", "result": "deny", "status": 403.0, "reason": "outside_tenant", "dry_run": true, "latency_us": 0.0, "revision": "rev-1"},
		},
		{
			name: "hostile path and method stay valid JSON",
			req:  engine.Request{Method: "G\"ET\n", Path: "/a\"b\\c\x00\x1f\xff\u2028é"},
			res:  deny(400, decision.ReasonBadPath, "", ""),
			want: map[string]any{"user": "", "method": "G\"ET\n", "path": "/a\"b\\c\x00\x1f\ufffd\u2028é",
				"customer": "", "result": "deny", "status": 400.0, "reason": "bad_path", "dry_run": false, "latency_us": 0.0, "revision": "rev-1"},
		},
		{
			name: "long path truncated",
			req:  engine.Request{Method: "GET", Path: long},
			res:  deny(400, decision.ReasonBadPath, "", ""),
			want: map[string]any{"user": "", "method": "GET", "path": long[:8192], "path_truncated": true,
				"customer": "", "result": "deny", "status": 400.0, "reason": "bad_path", "dry_run": false, "latency_us": 0.0, "revision": "rev-1"},
		},
		{
			name: "no snapshot",
			req:  engine.Request{Method: "GET", Path: "/x"},
			res:  engine.Result{Decision: decision.Internal()},
			want: map[string]any{"user": "", "method": "GET", "path": "/x",
				"customer": "", "result": "deny", "status": 503.0, "reason": "internal_error", "dry_run": false, "latency_us": 0.0, "revision": ""},
		},
	}
	ids := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncbuf.Buffer
			l := decisionlog.New(&out, decisionlog.Options{Logger: quiet()})
			before := time.Now().UTC()
			l.ObserveDecision(&tc.req, &tc.res, tc.elapsed)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			text := out.String()
			if strings.Contains(text, token[20:]) || strings.Contains(text, "Bearer") {
				t.Fatalf("the token is in the log: %s", text)
			}
			if strings.Count(text, "\n") != 1 || !strings.HasSuffix(text, "\n") {
				t.Fatalf("want exactly one line, got %q", text)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(text), &got); err != nil {
				t.Fatalf("not JSON: %v: %s", err, text)
			}
			ts, err := time.Parse(time.RFC3339Nano, got["time"].(string))
			if err != nil || ts.Before(before) || ts.After(time.Now()) || !strings.HasSuffix(got["time"].(string), "Z") {
				t.Errorf("time %v (%v): want RFC 3339 UTC, at the decision", got["time"], err)
			}
			id, _ := got["decision_id"].(string)
			if !uuidRE.MatchString(id) || ids[id] {
				t.Errorf("decision_id %q: want a fresh UUIDv4", id)
			}
			ids[id] = true
			delete(got, "time")
			delete(got, "decision_id")
			if len(got) != len(tc.want) {
				t.Errorf("fields %v, want %v", keys(got), keys(tc.want))
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// stuckWriter blocks every Write until released, and says when it is blocked.
type stuckWriter struct {
	blocked chan struct{}
	release chan struct{}
	out     syncbuf.Buffer
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.blocked) })
	<-w.release
	return w.out.Write(p)
}

func TestDropsWhenWriterIsStuck(t *testing.T) {
	const queue, burst = 4, 100
	w := &stuckWriter{blocked: make(chan struct{}), release: make(chan struct{})}
	l := decisionlog.New(w, decisionlog.Options{QueueSize: queue, Logger: quiet()})
	reg := prometheus.NewRegistry()
	if err := l.Register(reg); err != nil {
		t.Fatal(err)
	}
	req, res := engine.Request{Method: "GET", Path: "/x"}, allow("u", "c")

	l.ObserveDecision(&req, &res, 0)
	<-w.blocked // the writer holds the first line and is stuck in Write
	done := make(chan struct{})
	go func() {
		for range burst {
			l.ObserveDecision(&req, &res, 0) // must never block
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ObserveDecision blocked on a stuck writer")
	}
	if got := l.Dropped(); got != burst-queue {
		t.Fatalf("dropped %d, want %d (queue %d)", got, burst-queue, queue)
	}
	if got := counter(t, reg, "tenantgate_decision_log_dropped_total"); got != burst-queue {
		t.Fatalf("tenantgate_decision_log_dropped_total = %v, want %d", got, burst-queue)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(w.out.String(), "\n"); n != 1+queue {
		t.Fatalf("%d lines written, want %d", n, 1+queue)
	}
	l.ObserveDecision(&req, &res, 0)
	if got := l.Dropped(); got != burst-queue+1 {
		t.Fatalf("a line after Close: dropped %d, want %d", got, burst-queue+1)
	}
}

func TestCloseTimesOutOnAStuckWriter(t *testing.T) {
	w := &stuckWriter{blocked: make(chan struct{}), release: make(chan struct{})}
	defer close(w.release)
	l := decisionlog.New(w, decisionlog.Options{Logger: quiet(), CloseTimeout: 50 * time.Millisecond})
	req, res := engine.Request{Method: "GET", Path: "/x"}, allow("u", "c")
	l.ObserveDecision(&req, &res, 0)
	<-w.blocked
	if err := l.Close(); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("Close = %v, want a timeout error", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

// counter reads a registered counter's value by name.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

func TestDevFullErrorsAreCountedNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	if err := os.Symlink("/dev/full", path); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	l, err := decisionlog.Open(path, decisionlog.Options{
		Logger:           slog.New(slog.NewTextHandler(&logs, nil)),
		ErrorLogInterval: time.Hour, // so the rate limit is what this test sees
		ReopenInterval:   10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if err := l.Register(reg); err != nil {
		t.Fatal(err)
	}
	req, res := engine.Request{Method: "GET", Path: "/x"}, allow("u", "c")
	for i := uint64(1); i <= 3; i++ {
		l.ObserveDecision(&req, &res, 0)
		eventually(t, "a write error counted", 10*time.Second, func() bool { return l.Errors() >= i })
	}
	if got := counter(t, reg, "tenantgate_decision_log_errors_total"); got < 3 {
		t.Fatalf("tenantgate_decision_log_errors_total = %v, want >= 3", got)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	text := logs.String()
	if n := strings.Count(text, "decision log failing"); n != 1 {
		t.Fatalf("%d error log lines, want 1 (rate-limited):\n%s", n, text)
	}
	if strings.Contains(text, "reopened") {
		t.Fatalf("a reopen after a failed write was logged (a full disk would log it every second):\n%s", text)
	}
	if !strings.Contains(text, path) || !strings.Contains(text, "no space left on device") {
		t.Fatalf("the error log does not name the file and the error:\n%s", text)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestReopen: logrotate renames the file (then the log must write to a new
// file at the path), or someone removes it.
func TestReopen(t *testing.T) {
	tests := []struct {
		name   string
		rotate func(path string) error
		moved  string // where the first line must still be, "" if nowhere
	}{
		{name: "removed", rotate: os.Remove},
		{name: "renamed", rotate: func(p string) error { return os.Rename(p, p+".1") }, moved: ".1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.log")
			l, err := decisionlog.Open(path, decisionlog.Options{Logger: quiet(), ReopenInterval: 10 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			first, second := engine.Request{Method: "GET", Path: "/first"}, engine.Request{Method: "GET", Path: "/second"}
			res := allow("u", "c")
			l.ObserveDecision(&first, &res, 0)
			eventually(t, "the first line written", 10*time.Second, func() bool { return len(readLines(t, path)) == 1 })
			if err := tc.rotate(path); err != nil {
				t.Fatal(err)
			}
			// Lines logged before the reopen go to the old file; keep logging
			// until one reaches the new file at the path.
			eventually(t, "a line in a new file at the path", 10*time.Second, func() bool {
				l.ObserveDecision(&second, &res, 0)
				lines := readLines(t, path)
				return len(lines) > 0 && strings.Contains(lines[0], `"path":"/second"`)
			})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.moved != "" {
				if lines := readLines(t, path+tc.moved); len(lines) == 0 || !strings.Contains(lines[0], `"path":"/first"`) {
					t.Fatalf("the rotated file lost the first line: %q", lines)
				}
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm()&0o007 != 0 {
				t.Errorf("the new file is world-accessible: %v", st.Mode())
			}
			if l.Errors() != 0 {
				t.Errorf("%d errors, want 0", l.Errors())
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.log")
	if err := os.WriteFile(existing, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "empty", path: "", wantErr: "empty path"},
		{name: "missing directory", path: filepath.Join(dir, "nope", "d.log"), wantErr: filepath.Join(dir, "nope", "d.log")},
		{name: "directory", path: dir, wantErr: dir},
		{name: "stdout", path: "-"},
		{name: "new file is 0640", path: filepath.Join(dir, "new.log"), check: func(t *testing.T) {
			st, err := os.Stat(filepath.Join(dir, "new.log"))
			if err != nil {
				t.Fatal(err)
			}
			if want := os.FileMode(decisionlog.FileMode) &^ umask(t); st.Mode().Perm() != want {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), want)
			}
		}},
		{name: "appends", path: existing, check: func(t *testing.T) {
			lines := readLines(t, existing)
			if len(lines) != 2 || lines[0] != "earlier line" || !json.Valid([]byte(lines[1])) {
				t.Errorf("lines %q: want the earlier line then one JSON line", lines)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := decisionlog.Open(tc.path, decisionlog.Options{Logger: quiet()})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.path != "-" {
				req, res := engine.Request{Method: "GET", Path: "/x"}, allow("u", "c")
				l.ObserveDecision(&req, &res, 0)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// umask finds the process umask from a probe file created with mode 0777.
func umask(t *testing.T) os.FileMode {
	t.Helper()
	probe := filepath.Join(t.TempDir(), "probe")
	f, err := os.OpenFile(probe, os.O_CREATE|os.O_WRONLY, 0o777)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ st.Mode().Perm()
}

// BenchmarkObserveDecision is the cost on the decision path: encode one line
// and queue it (the writer goroutine writes to io.Discard meanwhile).
func BenchmarkObserveDecision(b *testing.B) {
	l := decisionlog.New(io.Discard, decisionlog.Options{Logger: quiet(), QueueSize: 1 << 16})
	defer l.Close()
	req := engine.Request{Method: "GET", Path: "/api/v1/customers/contoso/locations/hq/vbr-jobs?page=2", Authorization: "Bearer " + token}
	res := allow("bob@contoso.example", "contoso")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.ObserveDecision(&req, &res, 37*time.Microsecond)
		}
	})
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
}

// TestOpenWarnsOnAWorldReadableFile: an existing file keeps its mode, so a
// log file every local user can read is called out, once, and still used.
func TestOpenWarnsOnAWorldReadableFile(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o606, true}, {0o640, false}, {0o600, false}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "d.log")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // not subject to the umask
				t.Fatal(err)
			}
			var logs bytes.Buffer
			l, err := decisionlog.Open(path, decisionlog.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			req, res := engine.Request{Method: "GET", Path: "/x"}, allow("u", "c")
			l.ObserveDecision(&req, &res, 0)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			warned := strings.Count(logs.String(), "readable or writable by every local user")
			if tc.warn && (warned != 1 || !strings.Contains(logs.String(), "chmod o-rwx")) || !tc.warn && warned != 0 {
				t.Errorf("mode %v: warned %d times, want %t; log:\n%s", tc.mode, warned, tc.warn, logs.String())
			}
			if lines := readLines(t, path); len(lines) != 1 {
				t.Errorf("the file got %d lines, want the decision written anyway", len(lines))
			}
		})
	}
}

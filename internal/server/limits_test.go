package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

// Limits, as `tenantgate help reliability` lists them.

// slowPolicies copies the policies and makes every decision first run a
// loop of n*n steps that never succeeds (so the decision itself is
// unchanged): n = 20000 is minutes of work, far past any deadline; a few
// hundred is a decision of some milliseconds.
func slowPolicies(t *testing.T, n int) string {
	t.Helper()
	dir := testdir.Copy(t, "../../policies")
	authz := filepath.Join(dir, "authz.rego")
	src := readFile(t, authz)
	const first = "reason := \"bad_path\" if {\n\tnot path_is_valid\n}"
	if !strings.Contains(src, first) {
		t.Fatalf("authz.rego no longer starts its reasons with %q; update this test", first)
	}
	writeFile(t, authz, strings.Replace(src, first, "reason := \"bad_path\" if {\n\tnot slow\n\tnot path_is_valid\n}", 1))
	writeFile(t, filepath.Join(dir, "slow.rego"), fmt.Sprintf(`package tenantgate.authz

# For the tests only: n*n steps that never succeed.
slow if {
	some i in numbers.range(1, %d)
	some j in numbers.range(1, %d)
	i + j < 0
}
`, n, n))
	return dir
}

// TestLimitDecisionDeadline: an evaluation that overruns its deadline is a
// fail-closed 503 internal_error, over gRPC a denied CheckResponse (never an
// RPC error, which failure_mode_allow would let through), and it comes back
// at the deadline, not when the evaluation would have ended.
func TestLimitDecisionDeadline(t *testing.T) {
	r := launch(t, serveOpts{policies: slowPolicies(t, 20000), timeout: 50 * time.Millisecond})
	tests := []struct {
		name  string
		check func(method, path, user string, extra map[string]string) answer
	}{
		{"grpc", r.grpcCheck},
		{"http", r.httpCheck},
		{"forward-auth", r.forwardCheck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			a := tc.check("GET", allowedPath, alice, nil) // grpcCheck fails the test on an RPC error
			took := time.Since(start)
			t.Logf("answered after %v", took.Round(time.Millisecond))
			if a.status != 503 || a.reason != "internal_error" {
				t.Fatalf("got %d %s, want 503 internal_error", a.status, a.reason)
			}
			var body struct{ Error, Reason string }
			if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Error != "unavailable" || body.Reason != "internal_error" {
				t.Errorf("body %q (%v)", a.body, err)
			}
			// Unbounded, the loop runs for minutes: an answer within 20 s
			// (a loaded machine, -race) shows the evaluation was cut off.
			if took > 20*time.Second {
				t.Errorf("answered after %v: the deadline did not cut the evaluation", took)
			}
		})
	}
	if !strings.Contains(r.logs.String(), "decision failed; denying") {
		t.Error("the overrun is not logged")
	}
	if got := r.metric(`tenantgate_decisions_total{reason="internal_error",result="deny"}`); got != "3" {
		t.Errorf("internal_error denies in the metrics: %q, want 3", got)
	}
}

// bigHeader is a CheckRequest for alice with one header of size bytes.
func (h *harness) bigCheck(size int) (*authv3.CheckResponse, error) {
	return h.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: allowedPath,
			Headers: map[string]string{"authorization": "Bearer " + h.token(alice), "x-big": strings.Repeat("b", size)},
		}},
	}})
}

// TestLimitGRPCMessageSize: a CheckRequest over the receive cap (1 MiB by
// default) is refused by the transport with ResourceExhausted, one under it
// is decided, and the server keeps serving on the same connection.
func TestLimitGRPCMessageSize(t *testing.T) {
	r := launch(t, serveOpts{})
	if resp, err := r.bigCheck(512 << 10); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("a 512 KiB request: %v %v, want an allow", resp.GetStatus(), err)
	}
	_, err := r.bigCheck(2 << 20)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 2 MiB request: %v, want ResourceExhausted", err)
	}
	if a := r.grpcCheck("GET", allowedPath, alice, nil); a.reason != "allowed" {
		t.Fatalf("after the refused request: %s", a.reason)
	}
}

// overlap records decision intervals and the most that ran at once.
type overlap struct {
	mu        sync.Mutex
	intervals [][2]time.Time
}

func (o *overlap) ObserveDecision(_ *engine.Request, _ *engine.Result, elapsed time.Duration) {
	end := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.intervals = append(o.intervals, [2]time.Time{end.Add(-elapsed), end})
}

func (o *overlap) ObserveReload(*engine.Snapshot, error) {}

func (o *overlap) max() (most, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range o.intervals {
		at := 0
		for _, b := range o.intervals {
			if !b[0].After(a[0]) && b[1].After(a[0]) {
				at++ // b was running when a started
			}
		}
		most = max(most, at)
	}
	return most, len(o.intervals)
}

// TestLimitGRPCMaxConcurrentStreams: with the limit at 2, 16 concurrent
// slow checks on one connection are all answered, and never more than 2
// are decided at once.
func TestLimitGRPCMaxConcurrentStreams(t *testing.T) {
	ov := &overlap{}
	r := launch(t, serveOpts{
		policies: slowPolicies(t, 100), timeout: 30 * time.Second,
		observer: func(*metrics.Metrics, *slog.Logger) engine.Observer { return ov },
		config:   func(c *Config) { c.MaxConcurrentStreams = 2 },
	})
	tok := r.token(alice)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			// A distinct id per request: no decision cache hit.
			resp, err := r.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "GET", Path: fmt.Sprintf("%s/u-%d", allowedPath, i),
					Headers: map[string]string{"authorization": "Bearer " + tok},
				}},
			}})
			if err != nil || resp.GetOkResponse() == nil {
				t.Errorf("request %d: %v %v", i, resp.GetStatus(), err)
			}
		})
	}
	wg.Wait()
	most, n := ov.max()
	t.Logf("%d decisions, at most %d at once", n, most)
	if n < 16 || most > 2 {
		t.Errorf("%d decisions, at most %d at once; want 16, at most 2", n, most)
	}
}

// TestHTTPLimitsDefaults: a zero field takes the default, a set one stays.
func TestHTTPLimitsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   HTTPLimits
		want HTTPLimits
	}{
		{"zero", HTTPLimits{}, DefaultHTTPLimits},
		{"some set", HTTPLimits{ReadHeaderTimeout: time.Second, MaxHeaderBytes: 1024},
			HTTPLimits{ReadHeaderTimeout: time.Second, ReadTimeout: DefaultHTTPLimits.ReadTimeout, WriteTimeout: DefaultHTTPLimits.WriteTimeout,
				IdleTimeout: DefaultHTTPLimits.IdleTimeout, MaxHeaderBytes: 1024}},
		{"all set", HTTPLimits{1, 2, 3, 4, 5}, HTTPLimits{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.withDefaults(); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestLimitSlowloris: many clients that send their headers a byte at a time
// do not starve the others: normal checks are answered (correctly) all
// along, and the read-header timeout cuts the slow clients off.
func TestLimitSlowloris(t *testing.T) {
	const slow = 100
	r := launch(t, serveOpts{config: func(c *Config) {
		// Longer than the 2 s of normal checks below, so they all run
		// while every slow client is connected.
		c.HTTP = HTTPLimits{ReadHeaderTimeout: 3 * time.Second}
	}})
	var cut atomic.Int32
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for range slow {
		c, err := net.Dial("tcp", r.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			done := make(chan struct{})
			go func() {
				// The server ends the connection (maybe after a 408).
				_, _ = io.Copy(io.Discard, c)
				cut.Add(1)
				close(done)
			}()
			req := "GET /authz/api/v1/customers/contoso/users HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 10000)
			for i := 0; i < len(req); i++ {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := c.Write([]byte{req[i]}); err != nil {
					<-done
					return
				}
			}
		})
	}

	// Meanwhile, normal checks on fresh connections: each answered, right.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(2 * time.Second)
	answered := 0
	for time.Now().Before(deadline) {
		resp, err := httpAsk(r, client, "http://"+r.httpAddr, "GET", allowedPath)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a normal check while %d clients crawl: %v %v", slow, resp, err)
		}
		answered++
	}
	t.Logf("%d normal checks answered while %d slow clients were connected (%d cut off so far)", answered, slow, cut.Load())
	eventually(t, "every slow client cut off", 30*time.Second, func() bool { return cut.Load() == slow })
}

// TestLimitIdleTimeout: a keep-alive connection left idle is closed.
func TestLimitIdleTimeout(t *testing.T) {
	r := launch(t, serveOpts{config: func(c *Config) { c.HTTP = HTTPLimits{IdleTimeout: 300 * time.Millisecond} }})
	c, err := net.Dial("tcp", r.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection: read %v, want EOF (closed by the server)", err)
	}
	t.Logf("closed after %v idle", time.Since(start).Round(time.Millisecond))
}

// TestLimitOversized: an over-long header or path is a clean deny, and the
// server keeps serving.
func TestLimitOversized(t *testing.T) {
	r := launch(t, serveOpts{})
	longPath := "/api/v1/customers/contoso/users/" + strings.Repeat("a", 4096)
	longToken := strings.Repeat("x", 20<<10) // over the 16 KiB token cap, under the header cap

	t.Run("header over the cap: 431", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+r.httpAddr+"/authz"+allowedPath, nil)
		req.Header.Set("X-Big", strings.Repeat("b", 100<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("path over 4096 bytes: bad_path", func(t *testing.T) {
		for name, check := range map[string]func(method, path, user string, extra map[string]string) answer{
			"grpc": r.grpcCheck, "http": r.httpCheck, "forward-auth": r.forwardCheck,
		} {
			if a := check("GET", longPath, alice, nil); a.status != 400 || a.reason != "bad_path" || !strings.Contains(a.body, `"bad_path"`) {
				t.Errorf("%s: %d %s %q, want 400 bad_path", name, a.status, a.reason, a.body)
			}
		}
	})
	t.Run("token over its cap: unauthenticated", func(t *testing.T) {
		for name, check := range map[string]func(method, path, user string, extra map[string]string) answer{
			"grpc": r.grpcCheck, "http": r.httpCheck,
		} {
			a := check("GET", allowedPath, "", map[string]string{"authorization": "Bearer " + longToken})
			if a.status != 401 || a.reason != "unauthenticated" {
				t.Errorf("%s: %d %s, want 401 unauthenticated", name, a.status, a.reason)
			}
		}
	})
	if a := r.httpCheck("GET", allowedPath, alice, nil); a.reason != "allowed" {
		t.Fatalf("after the oversized requests: %s", a.reason)
	}
}

package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// BundleName and BundlePath are the bundle every sidecar is configured for.
const (
	BundleName = "tenantgate"
	BundlePath = "/bundles/tenantgate.tar.gz"
)

// Options configure a fleet run.
type Options struct {
	Binary   string // the tenantgate binary
	Data     string // the data directory the bundles are built from
	Policies string
	Dir      string // where configs, secrets and persistence directories go
	// Sidecars: the first half long-poll, the others poll plainly with
	// PollMax as max_delay_seconds.
	Sidecars int
	PollMax  int
	Log      io.Writer // progress lines; nil: discarded
}

// Report holds the figures a run measured.
type Report struct {
	Sidecars                 int
	LongPollConverge         time.Duration // slowest long-polling sidecar to serve the new revision
	PollConverge             time.Duration // slowest plainly polling sidecar
	PollMax                  time.Duration
	StatusReported           int // sidecars whose status report shows the new revision
	Requests, Failed, Allows int64
	Tampered, Unsigned       BadResult
	RestartReady             time.Duration // slowest sidecar back ready with the server down
	RestartRevision          string        // revision all served after the restart ("" if they differ)
	RestartPersisted         int           // sidecars whose status says persisted
	LogEvents                map[string]int
	LogBatches, TokenLeaks   int
	BadUploads               int
}

// BadResult is what a bad revision did across the fleet.
type BadResult struct {
	Switched int    // sidecars that served it (must be 0)
	Counted  int    // sidecars that counted a verification failure
	Reported int    // sidecars whose status report shows the error
	Error    string // one sidecar's error, as an example
}

func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet: %d tenantgate processes, one bundle server (long polling: %d, plain polling max_delay_seconds %v: %d)\n",
		r.Sidecars, (r.Sidecars+1)/2, r.PollMax.Seconds(), r.Sidecars/2)
	fmt.Fprintf(&b, "  new signed revision: all long-polling sidecars served it within %v, all polling ones within %v\n",
		r.LongPollConverge.Round(time.Millisecond), r.PollConverge.Round(time.Millisecond))
	fmt.Fprintf(&b, "  status service: %d/%d reported the new revision as active\n", r.StatusReported, r.Sidecars)
	fmt.Fprintf(&b, "  gRPC load: %d requests, %d failed, %d allowed\n", r.Requests, r.Failed, r.Allows)
	for _, x := range []struct {
		name string
		r    BadResult
	}{{"tampered", r.Tampered}, {"unsigned", r.Unsigned}} {
		fmt.Fprintf(&b, "  %s revision: %d switched, %d counted a verification failure, %d reported the error (%s)\n",
			x.name, x.r.Switched, x.r.Counted, x.r.Reported, x.r.Error)
	}
	fmt.Fprintf(&b, "  server stopped, sidecars restarted: all ready within %v on revision %q (%d say persisted)\n",
		r.RestartReady.Round(time.Millisecond), r.RestartRevision, r.RestartPersisted)
	fmt.Fprintf(&b, "  decision logs: %d gzip batches, events by revision %v, %d holding a token, %d bad uploads\n",
		r.LogBatches, r.LogEvents, r.TokenLeaks, r.BadUploads)
	return b.String()
}

type sidecar struct {
	i          int
	cfg        string
	grpc, http string
	cmd        *exec.Cmd
	done       chan struct{}
}

// Run runs the fleet scenario; an error is a broken harness or a sidecar
// that did not start. The figures are for the caller to judge.
func Run(ctx context.Context, o Options) (*Report, error) {
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	if o.PollMax <= 0 {
		o.PollMax = 3
	}
	key, err := NewKeyPair()
	if err != nil {
		return nil, err
	}
	maker, err := NewMaker(ctx, o.Data, o.Policies, key)
	if err != nil {
		return nil, err
	}
	data, err := tenant.LoadDir(o.Data)
	if err != nil {
		return nil, err
	}
	secret := filepath.Join(o.Dir, "hs256.secret")
	if err := os.WriteFile(secret, []byte("fleet-test-secret-0123456789abcdef0123456789"), 0o600); err != nil {
		return nil, err
	}
	user := firstActiveUser(data)
	token, err := identity.SignHS256(secret, user.ID, "", "", time.Hour, time.Now())
	if err != nil {
		return nil, err
	}

	bs, coll := NewBundleServer(), NewCollector()
	mux := http.NewServeMux()
	mux.Handle("/bundles/", bs)
	mux.Handle("/", coll)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	url := "http://" + ln.Addr().String()
	publish := func(rev string, make func(string) ([]byte, error)) error {
		b, err := make(rev)
		if err != nil {
			return err
		}
		bs.Publish(BundlePath, b)
		return nil
	}
	if err := publish("v1", maker.Signed); err != nil {
		return nil, err
	}

	rep := &Report{Sidecars: o.Sidecars, PollMax: time.Duration(o.PollMax) * time.Second}
	cars := make([]*sidecar, o.Sidecars)
	for i := range cars {
		c := &sidecar{i: i, grpc: freeAddr(), http: freeAddr(), cfg: filepath.Join(o.Dir, fmt.Sprintf("sidecar-%02d.yaml", i))}
		polling := fmt.Sprintf("min_delay_seconds: 1\n      max_delay_seconds: %d", o.PollMax)
		if i < (o.Sidecars+1)/2 {
			polling += "\n      long_polling_timeout_seconds: 10"
		}
		conf := fmt.Sprintf(`services:
  control:
    url: %s
labels:
  sidecar: "%d"
bundles:
  %s:
    service: control
    resource: %s
    persist: true
    polling:
      %s
    signing:
      keyid: %s
keys:
  %s:
    algorithm: RS256
    key: |
%s
status:
  service: control
decision_logs:
  service: control
  reporting:
    min_delay_seconds: 1
    max_delay_seconds: 2
persistence_directory: %s
`, url, i, BundleName, BundlePath, polling, KeyID, KeyID, indentPEM(key.Public, 6), filepath.Join(o.Dir, fmt.Sprintf("persist-%02d", i)))
		if err := os.WriteFile(c.cfg, []byte(conf), 0o644); err != nil {
			return nil, err
		}
		cars[i] = c
	}
	start := func() error {
		for _, c := range cars {
			if err := c.start(o, secret); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() {
		for _, c := range cars {
			c.stop()
		}
	}()
	if err := start(); err != nil {
		return nil, err
	}
	if _, err := waitAll(cars, 60*time.Second, func(c *sidecar) bool { return c.revision() == "v1" }); err != nil {
		return nil, fmt.Errorf("fleet: first revision: %w", err)
	}
	logf("fleet: %d sidecars ready on v1", len(cars))

	// Steady gRPC load across the fleet for the whole switch.
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var requests, failed, allows atomic.Int64
	for _, c := range cars {
		conn, err := grpc.NewClient(c.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			stopLoad()
			return nil, err
		}
		defer conn.Close()
		client := authv3.NewAuthorizationClient(conn)
		wg.Go(func() {
			req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/api/v1/customers/" + user.Customer + "/users",
					Headers: map[string]string{"authorization": "Bearer " + token}, Host: "portal.example", Scheme: "https"}}}}
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for loadCtx.Err() == nil {
				<-tick.C
				resp, err := client.Check(loadCtx, req)
				if loadCtx.Err() != nil {
					return
				}
				requests.Add(1)
				switch {
				case err != nil, resp.GetDeniedResponse().GetStatus().GetCode() >= 500:
					failed.Add(1)
				case resp.GetOkResponse() != nil:
					allows.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)

	published := time.Now()
	if err := publish("v2", maker.Signed); err != nil {
		stopLoad()
		return nil, err
	}
	times, err := waitAll(cars, time.Duration(o.PollMax+10)*time.Second, func(c *sidecar) bool { return c.revision() == "v2" })
	if err != nil {
		stopLoad()
		return nil, fmt.Errorf("fleet: v2: %w", err)
	}
	for i, t := range times {
		d := t.Sub(published)
		if i < (o.Sidecars+1)/2 {
			rep.LongPollConverge = max(rep.LongPollConverge, d)
		} else {
			rep.PollConverge = max(rep.PollConverge, d)
		}
	}
	waitUntil(10*time.Second, func() bool { return coll.Reporting(BundleName, "v2") == len(cars) })
	rep.StatusReported = coll.Reporting(BundleName, "v2")
	logf("fleet: v2 everywhere (long polling %v, polling %v)", rep.LongPollConverge, rep.PollConverge)

	for _, bad := range []struct {
		rev  string
		make func(string) ([]byte, error)
		res  *BadResult
	}{{"v3-tampered", maker.Tampered, &rep.Tampered}, {"v4-unsigned", maker.Unsigned, &rep.Unsigned}} {
		before := make([]int, len(cars))
		for i, c := range cars {
			before[i] = c.failures("verification")
		}
		if err := publish(bad.rev, bad.make); err != nil {
			stopLoad()
			return nil, err
		}
		waitUntil(time.Duration(o.PollMax+10)*time.Second, func() bool {
			for i, c := range cars {
				if c.failures("verification") <= before[i] {
					return false
				}
			}
			return true
		})
		waitUntil(5*time.Second, func() bool { return coll.ReportingError(BundleName) == len(cars) })
		for i, c := range cars {
			if c.revision() == bad.rev {
				bad.res.Switched++
			}
			if c.failures("verification") > before[i] {
				bad.res.Counted++
			}
			if bad.res.Error == "" {
				bad.res.Error = c.lastError()
			}
		}
		bad.res.Reported = coll.ReportingError(BundleName)
		logf("fleet: %s: %+v", bad.rev, *bad.res)
	}
	stopLoad()
	wg.Wait()
	rep.Requests, rep.Failed, rep.Allows = requests.Load(), failed.Load(), allows.Load()
	// Let the last decision-log batches go up (max_delay_seconds 2).
	time.Sleep(2500 * time.Millisecond)

	// The server goes away; every sidecar restarts and must come back on
	// the last good revision from its persistence directory.
	_ = hs.Close()
	for _, c := range cars {
		c.stop()
	}
	restarted := time.Now()
	if err := start(); err != nil {
		return nil, err
	}
	times, err = waitAll(cars, 60*time.Second, func(c *sidecar) bool { return c.ready() })
	if err != nil {
		return nil, fmt.Errorf("fleet: restart without the server: %w", err)
	}
	for _, t := range times {
		rep.RestartReady = max(rep.RestartReady, t.Sub(restarted))
	}
	revs := map[string]bool{}
	for _, c := range cars {
		revs[c.revision()] = true
		if c.persisted() {
			rep.RestartPersisted++
		}
	}
	if len(revs) == 1 {
		for r := range revs {
			rep.RestartRevision = r
		}
	}
	rep.LogEvents, rep.LogBatches, rep.TokenLeaks, rep.BadUploads = coll.Snapshot()
	return rep, nil
}

func firstActiveUser(d *tenant.Data) *tenant.User {
	ids := make([]string, 0, len(d.Users))
	for id, u := range d.Users {
		if !u.Disabled {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return d.Users[ids[0]]
}

func indentPEM(pem []byte, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n"+pad)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (c *sidecar) start(o Options, secret string) error {
	logFile, err := os.OpenFile(filepath.Join(o.Dir, fmt.Sprintf("sidecar-%02d.log", c.i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c.cmd = exec.Command(o.Binary, "serve", "--config", c.cfg, "--jwt-hs256-secret-file", secret,
		"--grpc-addr", c.grpc, "--http-addr", c.http, "--log-level", "warn", "--shutdown-delay", "0s")
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	c.done = make(chan struct{})
	go func() { _ = c.cmd.Wait(); logFile.Close(); close(c.done) }()
	return nil
}

func (c *sidecar) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

type statusDoc struct {
	Revision string `json:"revision"`
	Ready    bool   `json:"ready"`
	Bundles  map[string]struct {
		ActiveRevision string         `json:"active_revision"`
		Persisted      bool           `json:"persisted"`
		LastError      string         `json:"last_error"`
		Failures       map[string]int `json:"failures"`
	} `json:"bundles"`
}

func (c *sidecar) status() statusDoc {
	var st statusDoc
	resp, err := httpClient.Get("http://" + c.http + "/v1/status")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func (c *sidecar) revision() string {
	st := c.status()
	if !st.Ready {
		return ""
	}
	return st.Revision
}
func (c *sidecar) failures(stage string) int { return c.status().Bundles[BundleName].Failures[stage] }
func (c *sidecar) lastError() string         { return c.status().Bundles[BundleName].LastError }
func (c *sidecar) persisted() bool           { return c.status().Bundles[BundleName].Persisted }

func (c *sidecar) ready() bool {
	resp, err := httpClient.Get("http://" + c.http + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitAll polls every sidecar until cond holds for each, returning when it
// first held for each.
func waitAll(cars []*sidecar, d time.Duration, cond func(*sidecar) bool) ([]time.Time, error) {
	times := make([]time.Time, len(cars))
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var missed atomic.Int32
	for i, c := range cars {
		wg.Go(func() {
			for !cond(c) {
				if time.Now().After(deadline) {
					missed.Add(1)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			times[i] = time.Now()
		})
	}
	wg.Wait()
	if n := missed.Load(); n > 0 {
		return times, fmt.Errorf("%d of %d sidecars did not get there within %v", n, len(cars), d)
	}
	return times, nil
}

func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

// buildBinary builds cmd/tenantgate into a temp dir: the shutdown test
// signals a real process.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "tenantgate")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/tenantgate")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// sockClient is an HTTP client whose connections all go to a Unix socket.
// served is a real tenantgate process on Unix sockets, started by
// startServed and ready (/readyz 200).
type served struct {
	proc     *exec.Cmd
	secret   string // the HS256 secret file
	grpcSock string
	web      *http.Client // to the HTTP socket
	logs     *syncbuf.Buffer
	exited   chan struct{} // closed once the process has exited
	waitErr  error         // its exit, read after exited
}

// startServed runs the binary's serve on the demo data with policies and
// extra flags, waits until it is ready, and kills it at the end of the test
// if it is still running (its log is shown when the test failed).
func startServed(t *testing.T, bin, policies string, extra ...string) *served {
	t.Helper()
	dir := t.TempDir()
	s := &served{secret: filepath.Join(dir, "hs256.secret"), grpcSock: filepath.Join(dir, "grpc.sock"),
		logs: &syncbuf.Buffer{}, exited: make(chan struct{})}
	httpSock := filepath.Join(dir, "http.sock")
	writeFile(t, s.secret, "test-secret-test-secret-test-secret\n")
	args := append([]string{"serve", "--data", testdir.Copy(t, "../../data"), "--policies", policies,
		"--jwt-hs256-secret-file", s.secret,
		"--grpc-addr", "unix://" + s.grpcSock, "--http-addr", "unix://" + httpSock}, extra...)
	s.proc = exec.Command(bin, args...)
	s.proc.Stderr = s.logs
	if err := s.proc.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.waitErr = s.proc.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.proc.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	s.web = sockClient(httpSock)
	eventually(t, "ready", 30*time.Second, func() bool {
		resp, err := s.web.Get("http://tenantgate/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

func sockClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// call is one check sent across the shutdown.
type call struct {
	sent, done time.Time
	allowed    bool
	code       codes.Code // of the RPC error; OK when answered
}

// event is something seen at a time: a health status, a /readyz answer.
type event struct {
	at   time.Time
	what string
}

type recorder[T any] struct {
	mu   sync.Mutex
	list []T
}

func (r *recorder[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, v)
}

func (r *recorder[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.list...)
}

// TestGracefulShutdown sends load to a real tenantgate process across its
// SIGTERM and checks the sequence of `tenantgate help reliability` (Shutdown): health turns
// NOT_SERVING and /readyz 503 at once, while the listeners still answer for
// --shutdown-delay; in-flight checks finish, including the ones still
// running when the listeners close; the process exits 0 within 10 s.
//
// Honest accounting of the load: every check sent before the SIGTERM must be
// answered, correctly; a check sent after it may only fail with Unavailable
// (it met a closed listener), never with another error or a wrong answer.
// Each check is slow (a policy loop of a few hundred ms) and asks for a distinct
// path (no decision cache), so checks are in flight when the listeners close.
func TestGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	srv := startServed(t, bin, slowPolicies(t, 300),
		"--decision-timeout", "20s", "--shutdown-delay", "500ms", "--shutdown-timeout", "8s",
		"--log-format", "json")
	secret, grpcSock, web, logs, exited := srv.secret, srv.grpcSock, srv.web, srv.logs, srv.exited

	conn, err := grpc.NewClient("unix://"+grpcSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	tok, err := identity.SignHS256(secret, alice, "", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}

	// A health watcher on its own connection, as Envoy's would be.
	var health recorder[event]
	hconn, err := grpc.NewClient("unix://"+grpcSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer hconn.Close()
	watch, err := healthpb.NewHealthClient(hconn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			m, err := watch.Recv()
			if err != nil {
				health.add(event{time.Now(), "end " + status.Convert(err).Message()})
				return
			}
			health.add(event{time.Now(), m.GetStatus().String()})
		}
	}()

	var calls recorder[call]
	var ready recorder[event]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq sync.Mutex
	n := 0
	next := func() int { seq.Lock(); defer seq.Unlock(); n++; return n }
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := call{sent: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
					Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
						Method: "GET", Path: fmt.Sprintf("%s/u-%d", allowedPath, next()),
						Headers: map[string]string{"authorization": "Bearer " + tok},
					}},
				}})
				cancel()
				c.done, c.code, c.allowed = time.Now(), status.Code(err), resp.GetOkResponse() != nil
				calls.add(c)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the listener is gone: do not spin
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			what := "error"
			if resp, err := web.Get("http://tenantgate/readyz"); err == nil {
				resp.Body.Close()
				what = fmt.Sprint(resp.StatusCode)
			}
			ready.add(event{time.Now(), what})
		}
	})

	time.Sleep(1500 * time.Millisecond) // load under way, checks in flight
	sigAt := time.Now()
	if err := srv.proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
	exitAt := time.Now()
	close(stop)
	wg.Wait()
	<-watchDone
	t.Logf("exited %v after SIGTERM", exitAt.Sub(sigAt).Round(time.Millisecond))
	if strings.Contains(logs.String(), "at the shutdown timeout") {
		t.Errorf("the drain ran into the shutdown timeout:\n%s", logs.String())
	}
	if srv.waitErr != nil {
		t.Errorf("exit: %v, want status 0\n%s", srv.waitErr, logs.String())
	}

	// When the listeners began to close, from the process's own log.
	var closeAt time.Time
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var l struct {
			Time time.Time
			Msg  string
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && strings.HasPrefix(l.Msg, "stopping: draining") {
			closeAt = l.Time
		}
	}
	if closeAt.IsZero() {
		t.Fatalf("no drain in the logs:\n%s", logs.String())
	}

	// Health: SERVING, then NOT_SERVING after the signal, then the stream
	// ends (so a watcher does not hold the drain), all before the exit.
	hs := health.all()
	var sawNotServing bool
	for i, e := range hs {
		switch {
		case i == 0 && e.what != "SERVING":
			t.Errorf("health starts %s, want SERVING", e.what)
		case e.what == "NOT_SERVING":
			sawNotServing = true
			t.Logf("health NOT_SERVING %v after SIGTERM", e.at.Sub(sigAt).Round(time.Millisecond))
			if !e.at.Before(exitAt) {
				t.Errorf("NOT_SERVING only at the exit")
			}
		case strings.HasPrefix(e.what, "end"):
			// Ended by the server, not by its exit: a watch left open would
			// hold the drain until the shutdown timeout.
			if !sawNotServing || e.what != "end tenantgate is stopping" {
				t.Errorf("health stream %q, want it ended by the server after NOT_SERVING", e.what)
			}
		}
	}
	if !sawNotServing {
		t.Errorf("health never said NOT_SERVING: %v", hs)
	}

	// /readyz: 503 seen while the listener still answered, never 200 after.
	var first503 time.Time
	for _, e := range ready.all() {
		switch {
		case e.what == "503" && first503.IsZero():
			first503 = e.at
			t.Logf("/readyz 503 %v after SIGTERM", e.at.Sub(sigAt).Round(time.Millisecond))
		case e.what == "200" && !first503.IsZero():
			t.Errorf("/readyz 200 again at %v, after a 503", e.at.Sub(sigAt))
		}
	}
	if first503.IsZero() {
		t.Error("/readyz never answered 503 before the listener closed")
	}

	var before, inFlightAtClose, afterOK, afterUnavailable int
	for _, c := range calls.all() {
		sentBefore := c.sent.Before(sigAt)
		switch {
		case c.code == codes.OK && c.allowed:
			if !sentBefore {
				afterOK++
			}
		case c.code == codes.OK:
			t.Errorf("a check sent %v after SIGTERM got a wrong answer (a deny)", c.sent.Sub(sigAt))
		case sentBefore:
			t.Errorf("a check sent before SIGTERM failed: %v", c.code)
		case c.code == codes.Unavailable:
			afterUnavailable++
		default:
			t.Errorf("a check sent %v after SIGTERM failed with %v, not Unavailable", c.sent.Sub(sigAt), c.code)
		}
		if sentBefore {
			before++
		}
		if c.sent.Before(closeAt) && c.done.After(closeAt) {
			inFlightAtClose++
			if c.code != codes.OK || !c.allowed {
				t.Errorf("a check in flight when the listeners closed failed: %v", c.code)
			}
		}
	}
	t.Logf("checks: %d sent before SIGTERM (all answered), %d in flight when the listeners closed, "+
		"after SIGTERM %d answered and %d refused (Unavailable)", before, inFlightAtClose, afterOK, afterUnavailable)
	if before == 0 || inFlightAtClose == 0 {
		t.Errorf("the load did not cover the shutdown: %d checks before SIGTERM, %d in flight at the close", before, inFlightAtClose)
	}
	if _, err := os.Stat(grpcSock); !os.IsNotExist(err) {
		t.Errorf("the gRPC socket is still there after the exit: %v", err)
	}
}

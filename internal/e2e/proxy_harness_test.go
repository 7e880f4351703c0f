package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/proxyconfig"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
)

// seenRequest is what the upstream got: the request line, every header and
// the body. It is also the upstream's answer (as JSON), so the client can
// see what passed the proxy.
type seenRequest struct {
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Header http.Header `json:"headers"`
	Body   string      `json:"body"`
}

// upstream is the protected app: it records every request it receives and
// echoes it back as JSON.
type upstream struct {
	srv  *httptest.Server
	addr string // host:port
	mu   sync.Mutex
	seen []seenRequest
}

// idHeader marks each test request, so the upstream's log can be searched
// for it: a deny must leave no trace there.
const idHeader = "X-E2e-Id"

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seenRequest{Method: r.Method, URI: r.RequestURI, Header: r.Header.Clone(), Body: string(body)}
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(u.srv.Close)
	u.addr = u.srv.Listener.Addr().String()
	return u
}

// requests returns the requests the upstream got that carry this id.
func (u *upstream) requests(id string) []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []seenRequest
	for _, s := range u.seen {
		if s.Header.Get(idHeader) == id {
			out = append(out, s)
		}
	}
	return out
}

// proxyKind is one proxy product: how to find it, render its config and
// run it in the foreground, as the config's own header says to.
type proxyKind struct {
	name     string
	binary   string
	config   string // the kind of `tenantgate config`
	confName string
	// params fill the config for a proxy listening on listen, with its
	// own files under dir.
	params func(dir, listen, tenantgate, upstream string) proxyconfig.Params
	args   func(dir, conf string) []string
	env    func(dir string) []string
	// unreachableStatus is what the client gets when tenantgate cannot be
	// reached at all.
	unreachableStatus int
	// keepsOtherTenantgateNames: the proxy cannot remove headers by a name
	// prefix, so a client's x-tenantgate-* header that tenantgate never sets
	// reaches the app.
	keepsOtherTenantgateNames bool
}

var nginx = proxyKind{
	name: "nginx", binary: "nginx", config: "nginx", confName: "nginx.conf",
	params: func(dir, listen, tenantgate, upstream string) proxyconfig.Params {
		return proxyconfig.Params{Dir: dir, Listen: listen, HTTPAddr: tenantgate, Upstream: upstream}
	},
	// The config's header: nginx -c "$PWD/nginx.conf" -e DIR/error.log -g 'daemon off;'
	args: func(dir, conf string) []string {
		return []string{"-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}
	},
	unreachableStatus:         http.StatusServiceUnavailable,
	keepsOtherTenantgateNames: true,
}

var caddy = proxyKind{
	name: "caddy", binary: "caddy", config: "caddy", confName: "Caddyfile",
	params: func(_, listen, tenantgate, upstream string) proxyconfig.Params {
		return proxyconfig.Params{Listen: listen, HTTPAddr: tenantgate, Upstream: upstream}
	},
	// The config's header: caddy run --config Caddyfile --adapter caddyfile
	args: func(dir, conf string) []string {
		return []string{"run", "--config", conf, "--adapter", "caddyfile"}
	},
	// Caddy keeps its state under HOME/XDG dirs: keep them in the test's
	// temp dir, away from the user's own Caddy.
	env: func(dir string) []string {
		return []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "XDG_DATA_HOME=" + filepath.Join(dir, "data")}
	},
	unreachableStatus: http.StatusBadGateway,
}

var proxyKinds = []proxyKind{nginx, caddy}

// findBinary looks for a proxy on PATH and in the sbin directories, which
// are not on a normal user's PATH on Debian. A missing binary fails the
// test: `make test` installs both, and nothing is skipped.
func findBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s is not installed: run `make test-deps` (it installs nginx and caddy with apt-get)", name)
	return ""
}

// renderConfig writes the config `tenantgate config KIND` prints for
// these addresses into dir.
func renderConfig(t *testing.T, kind proxyKind, p proxyconfig.Params, dir string) string {
	t.Helper()
	b, err := proxyconfig.Render(kind.config, p)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, kind.confName)
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the proxy binds it; startProxy retries then.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proxy is a running proxy process.
type proxy struct {
	kind proxyKind
	dir  string
	addr string // 127.0.0.1:port
	out  *syncbuf.Buffer
}

// logs is everything the proxy wrote, for failure messages.
func (p *proxy) logs() string {
	s := p.out.String()
	if b, err := os.ReadFile(filepath.Join(p.dir, "error.log")); err == nil {
		s += string(b)
	}
	return s
}

// startProxy runs the proxy in the foreground, in front of tenantgateAddr
// and upstreamAddr, and stops it when the test ends.
func startProxy(t *testing.T, kind proxyKind, tenantgateAddr, upstreamAddr string) *proxy {
	t.Helper()
	bin := findBinary(t, kind.binary)
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		dir := t.TempDir()
		listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
		conf := renderConfig(t, kind, kind.params(dir, listen, tenantgateAddr, upstreamAddr), dir)
		p := &proxy{kind: kind, dir: dir, addr: listen, out: &syncbuf.Buffer{}}
		cmd := exec.Command(bin, kind.args(dir, conf)...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = p.out, p.out
		if kind.env != nil {
			cmd.Env = append(os.Environ(), kind.env(dir)...)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		c := watchChild(cmd)
		if err := waitListening(p.addr, c, 30*time.Second); err != nil {
			_ = c.stop()
			lastErr = fmt.Sprintf("%s did not start on %s: %v\n%s", kind.name, p.addr, err, p.logs())
			if strings.Contains(p.logs(), "in use") {
				continue // the free port was taken meanwhile: try another
			}
			t.Fatal(lastErr)
		}
		t.Cleanup(func() {
			if err := c.stop(); err != nil {
				t.Errorf("%s: %v\n%s", kind.name, err, p.logs())
			}
		})
		return p
	}
	t.Fatal(lastErr)
	return nil
}

// child is a started process and its exit.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // cmd.Wait's error, once done is closed
}

func watchChild(cmd *exec.Cmd) *child {
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c
}

// waitListening polls until addr accepts connections, the process exits,
// or the time is up.
func waitListening(addr string, c *child, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited: %v", c.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening after %s: %w", limit, err)
		}
	}
}

// stop asks the process to stop (SIGTERM), then kills it if it has not
// stopped within 10s. A process that had exited before, or that ignores
// SIGTERM, is an error.
func (c *child) stop() error {
	select {
	case <-c.done:
		return fmt.Errorf("exited before it was stopped: %v", c.err)
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("did not stop within 10s of SIGTERM; killed")
	}
}

// reply is what the client got.
type reply struct {
	status int
	header http.Header
	body   string
}

// client never follows redirects and never reuses a connection across
// proxies that are stopped and started.
var client = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// send sends one request through the proxy with the raw target as is (no
// cleaning, no re-encoding), and the header names as spelt in header (not
// canonicalized: a forged x_tenantgate_user must go out as such).
func (p *proxy) send(t *testing.T, method, target string, header map[string]string, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+p.addr+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = target
	req.Host = "portal.example"
	for k, v := range header {
		req.Header[k] = []string{v}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through %s: %v\n%s", method, target, p.kind.name, err, p.logs())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

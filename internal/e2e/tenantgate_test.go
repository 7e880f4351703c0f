package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/server"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

// tenantgate is one real tenantgate, in process: real listeners on
// loopback ports, the repository's demo data and policies (copied), an
// HS256 secret file.
type tenantgate struct {
	t        *testing.T
	grpcAddr string
	httpAddr string
	secret   string
}

// startTenantgate serves ../../data and ../../policies with server.Run on
// port 0, and stops it when the test ends.
func startTenantgate(t *testing.T) *tenantgate {
	t.Helper()
	tg := &tenantgate{t: t, secret: filepath.Join(t.TempDir(), "hs256.secret")}
	if err := os.WriteFile(tg.secret, []byte("e2e-secret-e2e-secret-e2e-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ident := identity.Config{HS256SecretFile: tg.secret, Leeway: 60 * time.Second}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	met := metrics.New()
	dirs := engine.Dirs{Data: testdir.Copy(t, "../../data"), Policies: testdir.Copy(t, "../../policies")}
	// A generous decision deadline: the machine may be loaded, and this
	// test is about the proxies, not about the deadline.
	eng := engine.New(engine.Options{Source: dirs, Identity: &ident, Logger: log, Observer: met, Timeout: 2 * time.Second})
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
			Engine: eng, Metrics: met, Logger: log,
			Watch: append(dirs.Watched(), tg.secret), Debounce: 20 * time.Millisecond,
			Ready: func(a server.Addrs) { ready <- [2]string{a.GRPC.String(), a.HTTP.String()} },
		})
	}()
	select {
	case a := <-ready:
		tg.grpcAddr, tg.httpAddr = a[0], a[1]
	case err := <-done:
		cancel()
		t.Fatalf("tenantgate exited: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("tenantgate did not start within 30s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tenantgate: %v", err)
		}
	})
	return tg
}

// token mints a valid HS256 token for user.
func (tg *tenantgate) token(user string) string {
	tg.t.Helper()
	tok, err := identity.SignHS256(tg.secret, user, "", "", time.Hour, time.Now())
	if err != nil {
		tg.t.Fatal(err)
	}
	return tok
}

// The tenantgate binary, built once per test run for the tests that need
// the real command line (`tenantgate serve -h`).
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func tenantgateBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tenantgate-e2e-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "tenantgate")
		// `go test` puts its own go first on PATH, so this is the same
		// toolchain, and the build cache makes it quick.
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/tenantgate")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/tenantgate: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// serveFlag is one flag of `tenantgate serve`, as its -h prints it.
type serveFlag struct {
	name, def string
}

var flagLine = regexp.MustCompile(`^  -([a-z0-9-]+)`)
var defaultValue = regexp.MustCompile(`\(default "?([^")]*)"?\)`)

// serveFlags runs `tenantgate serve -h` and returns its flags by name.
func serveFlags(t *testing.T) map[string]serveFlag {
	t.Helper()
	cmd := exec.Command(tenantgateBinary(t), "serve", "-h")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("tenantgate serve -h: %v\n%s", err, out.String())
	}
	text := out.String()
	flags := map[string]serveFlag{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			flags[last] = serveFlag{name: last}
		}
		// The default is printed at the end of the usage text, which may
		// wrap onto the next lines.
		if m := defaultValue.FindStringSubmatch(line); m != nil && last != "" {
			f := flags[last]
			f.def = m[1]
			flags[last] = f
		}
	}
	if len(flags) == 0 || !strings.Contains(text, "-grpc-addr") {
		t.Fatalf("tenantgate serve -h printed no flags:\n%s", text)
	}
	return flags
}

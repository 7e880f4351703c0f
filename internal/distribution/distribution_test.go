package distribution

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/fleet"
	"github.com/tenantgate/tenantgate/internal/engine"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var (
	makerOnce sync.Once
	maker     *fleet.Maker
	keys      fleet.KeyPair
	makerErr  error
)

// testMaker builds revisions of the repository's data and policies.
func testMaker(t *testing.T) (*fleet.Maker, fleet.KeyPair) {
	t.Helper()
	makerOnce.Do(func() {
		if keys, makerErr = fleet.NewKeyPair(); makerErr == nil {
			maker, makerErr = fleet.NewMaker(context.Background(), "../../data", "../../policies", keys)
		}
	})
	if makerErr != nil {
		t.Fatal(makerErr)
	}
	return maker, keys
}

func mustBundle(t *testing.T, make func(string) ([]byte, error), rev string) []byte {
	t.Helper()
	b, err := make(rev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// indent puts a PEM key into a YAML block scalar.
func indent(pem []byte, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n"+pad)
}

// signedConfig is an OPA config for one signed bundle at url, long polling
// when longPoll > 0.
func signedConfig(url, persistDir string, pub []byte, longPoll int, extra string) string {
	lp := ""
	if longPoll > 0 {
		lp = "\n      long_polling_timeout_seconds: " + itoa(longPoll)
	}
	return `services:
  bundles:
    url: ` + url + `
bundles:
  tenantgate:
    service: bundles
    resource: /bundles/tenantgate.tar.gz
    persist: true
    polling:
      min_delay_seconds: 1
      max_delay_seconds: 2` + lp + `
    signing:
      keyid: ` + fleet.KeyID + `
keys:
  ` + fleet.KeyID + `:
    algorithm: RS256
    key: |
` + indent(pub, 6) + `
persistence_directory: ` + persistDir + "\n" + extra
}

func itoa(n int) string { return strconv.Itoa(n) }

// sidecar is a Source and an engine, as serve wires them.
type sidecar struct {
	src  *Source
	eng  *engine.Engine
	stop func()
}

func startSidecar(t *testing.T, cfgText string) *sidecar {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(cfgText), quiet())
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Options{Source: src, Logger: quiet(), Timeout: time.Second})
	src.Attach(eng, nil)
	src.LoadPersisted()
	_ = eng.Reload(context.Background())
	src.Observed()
	ctx, cancel := context.WithCancel(context.Background())
	stopDL := src.Start(ctx)
	s := &sidecar{src: src, eng: eng, stop: func() { stopDL(); cancel() }}
	t.Cleanup(s.stop)
	return s
}

func (s *sidecar) revision() string {
	if snap := s.eng.Snapshot(); snap != nil {
		return snap.Revision
	}
	return ""
}

func (s *sidecar) status() BundleStatus { return s.src.Status()[s.src.name] }

// waitFor polls cond up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLongPollingKeepsTheLastGood: a new signed revision is served within
// the long poll's reaction time; a tampered, an unsigned and an invalid one
// change nothing and are counted by stage; with the server gone, a new
// sidecar serves the persisted revision at once, marked persisted.
func TestLongPollingKeepsTheLastGood(t *testing.T) {
	m, key := testMaker(t)
	srv := fleet.NewBundleServer()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	const path = "/bundles/tenantgate.tar.gz"
	srv.Publish(path, mustBundle(t, m.Signed, "r1"))
	dir := t.TempDir()
	cfg := signedConfig(hs.URL, dir, key.Public, 10, "")
	sc := startSidecar(t, cfg)
	waitFor(t, 10*time.Second, "r1 not activated", func() bool { return sc.revision() == "r1" })

	srv.Publish(path, mustBundle(t, m.Signed, "r2"))
	// The bound is generous (a loaded machine under -race); the fleet test
	// measures the 2 s figure.
	took := waitFor(t, 30*time.Second, "r2 not activated after publishing (long polling)", func() bool { return sc.revision() == "r2" })
	t.Logf("long polling: r2 served %v after publishing", took)

	bad := []struct {
		name, stage string
		tgz         []byte
	}{
		{"tampered", StageVerification, mustBundle(t, m.Tampered, "r3-tampered")},
		{"unsigned", StageVerification, mustBundle(t, m.Unsigned, "r4-unsigned")},
		{"no revision", StageValidation, mustBundle(t, m.Signed, "")},
	}
	for _, b := range bad {
		before := sc.status().Failures[b.stage]
		srv.Publish(path, b.tgz)
		waitFor(t, 5*time.Second, b.name+": no "+b.stage+" failure counted", func() bool { return sc.status().Failures[b.stage] > before })
		if rev := sc.revision(); rev != "r2" {
			t.Fatalf("%s: serving %q, want r2 (the last good)", b.name, rev)
		}
		if st := sc.status(); st.ActiveRevision != "r2" || !strings.HasPrefix(st.LastError, b.stage) {
			t.Errorf("%s: status %+v, want active r2 and a %s error", b.name, st, b.stage)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bundles", "tenantgate", "bundle.tar.gz")); err != nil {
		t.Fatalf("the activated bundle was not persisted: %v", err)
	}

	// The server goes away; a restarted sidecar serves r2 from disk.
	srv.SetDown(true)
	sc.stop()
	again := startSidecar(t, cfg)
	if rev := again.revision(); rev != "r2" {
		t.Fatalf("restarted with the server down: serving %q, want the persisted r2", rev)
	}
	if st := again.status(); !st.Persisted || st.ActiveRevision != "r2" {
		t.Errorf("restarted: status %+v, want persisted r2", st)
	}
	srv.Publish(path, mustBundle(t, m.Signed, "r2"))
	srv.SetDown(false)
	waitFor(t, 10*time.Second, "the persisted revision was not confirmed by a download", func() bool {
		st := again.status()
		return !st.Persisted && st.ActiveRevision != ""
	})
}

// TestNoBundleYet: without a server and nothing persisted there is no
// snapshot, and the source says why.
func TestNoBundleYet(t *testing.T) {
	_, key := testMaker(t)
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	sc := startSidecar(t, signedConfig(hs.URL, t.TempDir(), key.Public, 0, ""))
	if sc.eng.Snapshot() != nil {
		t.Fatal("a snapshot without any bundle")
	}
	waitFor(t, 5*time.Second, "no download failure counted for a 404", func() bool { return sc.status().Failures[StageDownload] > 0 })
	select {
	case <-sc.src.Activated():
		t.Fatal("activated without a bundle")
	default:
	}
}

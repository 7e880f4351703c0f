package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tenantgate/tenantgate/internal/decisionlog"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/metrics"
)

// Faults, as `tenantgate help reliability` lists them. Each keeps the last good snapshot serving,
// says what is wrong in /v1/status and the logs, and recovers when the
// fault is gone (harness.survive). The Rego compile error is in
// TestHotReload.

// widen gives bob branch-1 as well as hq, so a recovery to new content is
// visible in bobBranch.
func widen(t *testing.T, users string) string {
	t.Helper()
	const bobLine = "locations: [hq]"
	if !strings.Contains(users, bobLine) {
		t.Fatalf("demo users.yaml no longer has %q for bob; update this test", bobLine)
	}
	return strings.Replace(users, bobLine, "locations: [hq, branch-1]", 1)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFaultDataDirDeletedAndRecreated(t *testing.T) {
	r := launch(t, serveOpts{})
	dir := r.dataDir
	users, customers := readFile(t, filepath.Join(dir, "users.yaml")), readFile(t, filepath.Join(dir, "customers.yaml"))
	r.survive(t, fault{
		name:   "data dir deleted",
		inject: func(t *testing.T) { os.RemoveAll(dir) },
		want:   dir,
		restore: func(t *testing.T) {
			// Recreated in place, file by file, as a careless deploy would:
			// the watcher finds the dir again by polling, and whatever
			// partial state it reads first fails and is retried.
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "customers.yaml"), customers)
			writeFile(t, filepath.Join(dir, "users.yaml"), widen(t, users))
		},
	}, r.bobBranch)
	eventually(t, "the recreated data in force", 15*time.Second, func() bool { return r.bobBranch() == "allowed" })
}

// TestFaultUnreadableFile: the tests run as root, so chmod 000 does not stop
// a read. What does make tenant.LoadDir fail is a data file name whose
// target cannot be opened: a dangling symlink (ENOENT on stat) or a symlink
// loop (ELOOP). (A directory or a FIFO named users.yaml is not a read error:
// the loader skips anything that is not a regular file, as documented, so it
// reads as the file being absent.)
func TestFaultUnreadableFile(t *testing.T) {
	tests := []struct {
		name   string
		target string // the symlink's target, relative to the data dir
	}{
		{"dangling symlink", "users-gone.yaml"},
		{"symlink loop", "users.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, serveOpts{})
			path := filepath.Join(r.dataDir, "users.yaml")
			orig := readFile(t, path)
			r.survive(t, fault{
				name: tc.name,
				inject: func(t *testing.T) {
					tmp := filepath.Join(r.dataDir, ".users.link")
					if err := os.Symlink(tc.target, tmp); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(tmp, path); err != nil {
						t.Fatal(err)
					}
				},
				want:    "users.yaml",
				restore: func(t *testing.T) { renameInto(t, path, widen(t, orig)) },
			}, r.bobBranch)
			eventually(t, "the restored file in force", 15*time.Second, func() bool { return r.bobBranch() == "allowed" })
		})
	}
}

// TestFaultTruncatedMidWrite: a writer that stopped half-way through
// users.yaml (cut inside bob's role). The half file fails validation; the
// write's end brings the new content in.
func TestFaultTruncatedMidWrite(t *testing.T) {
	r := launch(t, serveOpts{})
	path := filepath.Join(r.dataDir, "users.yaml")
	full := widen(t, readFile(t, path))
	cut := strings.Index(full, "role: company-administrator\n    locations: [hq, branch-1]")
	if cut < 0 {
		t.Fatal("bob's role is no longer in the demo users.yaml; update this test")
	}
	cut += len("role: company-adm")
	r.survive(t, fault{
		name:    "truncated mid-write",
		inject:  func(t *testing.T) { writeFile(t, path, full[:cut]) },
		want:    "users.yaml",
		restore: func(t *testing.T) { writeFile(t, path, full) },
	}, r.bobBranch)
	eventually(t, "the whole file in force", 15*time.Second, func() bool { return r.bobBranch() == "allowed" })
}

// TestFaultThousandsOfFiles: a data dir of 3,000 small files (plus one
// root) loads, every file's entries are served, and an edit to one of them
// is picked up by a full reload that stays quick.
func TestFaultThousandsOfFiles(t *testing.T) {
	const n = 3000
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "acme.yaml"), "customers:\n  acme:\n    type: distributor\n")
	entry := func(i int, disabled bool) string {
		return fmt.Sprintf("customers:\n  c-%d:\n    type: end-customer\n    parent: acme\n    disabled: %t\n"+
			"users:\n  u-%d@c-%d.example:\n    customer: c-%d\n    role: company-owner\n", i, disabled, i, i, i)
	}
	for i := range n {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("t-%04d.yaml", i)), entry(i, false))
	}
	r := launch(t, serveOpts{dataDir: dir})
	st := r.status()
	if st.Customers != n+1 || st.Users != n || len(st.Files) < n+1 {
		t.Fatalf("status: %d customers, %d users, %d files; want %d, %d, over %d", st.Customers, st.Users, len(st.Files), n+1, n, n)
	}
	probe := func(i int) string {
		return r.grpcCheck("GET", fmt.Sprintf("/api/v1/customers/c-%d/users", i), fmt.Sprintf("u-%d@c-%d.example", i, i), nil).reason
	}
	for _, i := range []int{0, 1234, n - 1} {
		if got := probe(i); got != "allowed" {
			t.Fatalf("user of file %d: %s, want allowed", i, got)
		}
	}

	// One full reload, timed: it reads every file again. The bound is
	// generous (a loaded 2-core machine under -race); the time is logged.
	start := time.Now()
	if err := r.engine.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("a reload of %d files took %v", n+1, took.Round(time.Millisecond))
	if took > 20*time.Second {
		t.Errorf("a reload of %d files took %v", n+1, took)
	}

	writeFile(t, filepath.Join(dir, "t-1234.yaml"), entry(1234, true))
	eventually(t, "an edit to one of 3,000 files in force", 30*time.Second, func() bool { return probe(1234) == "customer_disabled" })
	if got := probe(1233); got != "allowed" {
		t.Errorf("a neighbour's user: %s, want allowed", got)
	}
}

// jwksKey is an Ed25519 signing key with its kid.
type jwksKey struct {
	kid  string
	priv ed25519.PrivateKey
}

func newJWKSKey(t *testing.T, kid string) jwksKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwksKey{kid: kid, priv: priv}
}

// jwksJSON is a JWKS holding the public halves of keys, written with jwx.
func jwksJSON(t *testing.T, keys ...jwksKey) string {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := jwk.Import(k.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Set(jwk.KeyIDKey, k.kid); err != nil {
			t.Fatal(err)
		}
		if err := pub.Set(jwk.AlgorithmKey, jwa.EdDSA()); err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (k jwksKey) token(t *testing.T, sub string) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject(sub).IssuedAt(time.Now()).Expiration(time.Now().Add(time.Hour)).Build()
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, k.kid); err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA(), k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// withToken decides alice's read of her own users with a given token.
func (h *harness) withToken(tok string) string {
	h.t.Helper()
	resp, err := h.client.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: allowedPath, Headers: map[string]string{"authorization": "Bearer " + tok},
		}},
	}})
	if err != nil {
		h.t.Fatalf("Check RPC error: %v", err)
	}
	if resp.GetOkResponse() != nil {
		return "allowed"
	}
	return resp.GetStatus().GetMessage()
}

// TestFaultJWKSRotation: the JWKS file is rotated to a new key: tokens of
// the old key are rejected from then on and the new key's accepted; a broken
// JWKS keeps the rotated keys serving; a JWKS with both keys accepts both.
func TestFaultJWKSRotation(t *testing.T) {
	oldKey, newKey := newJWKSKey(t, "2026-01"), newJWKSKey(t, "2026-02")
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, jwksFile, jwksJSON(t, oldKey))
	r := launch(t, serveOpts{jwksFile: jwksFile})
	oldTok, newTok := oldKey.token(t, alice), newKey.token(t, alice)

	if got := r.withToken(oldTok); got != "allowed" {
		t.Fatalf("old key before the rotation: %s", got)
	}
	if got := r.withToken(newTok); got != "unauthenticated" {
		t.Fatalf("new key before the rotation: %s", got)
	}
	// The old token is now in the verified-token cache: the rotation must
	// drop it with the snapshot.
	renameInto(t, jwksFile, jwksJSON(t, newKey))
	eventually(t, "the new key in force", 15*time.Second, func() bool { return r.withToken(newTok) == "allowed" })
	if got := r.withToken(oldTok); got != "unauthenticated" {
		t.Fatalf("old key after the rotation: %s, want unauthenticated", got)
	}

	r.survive(t, fault{
		name:    "broken JWKS",
		inject:  func(t *testing.T) { writeFile(t, jwksFile, `{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": `) },
		want:    jwksFile,
		restore: func(t *testing.T) { renameInto(t, jwksFile, jwksJSON(t, oldKey, newKey)) },
	}, func() string { return r.withToken(newTok) + "/" + r.withToken(oldTok) })
	eventually(t, "both keys in force", 15*time.Second, func() bool { return r.withToken(oldTok) == "allowed" })
	if got := r.withToken(newTok); got != "allowed" {
		t.Errorf("new key with both keys: %s", got)
	}
}

// TestFaultDecisionLog: the decision log's disk fills up (its path is a
// symlink to /dev/full, so every write fails with ENOSPC) or its file is
// removed. Decisions are unaffected (the log is an observer that never
// blocks them); the failure is logged, counted in /metrics and in the
// decision_log section of /v1/status; and once the fault is gone, lines
// land in the file at the path again.
func TestFaultDecisionLog(t *testing.T) {
	tests := []struct {
		name    string
		inject  func(t *testing.T, path string)
		logged  string // what the server's log must say
		failing bool   // writes fail while the fault holds
		restore func(t *testing.T, path string)
	}{
		{
			name: "disk full",
			inject: func(t *testing.T, path string) {
				tmp := path + ".full"
				if err := os.Symlink("/dev/full", tmp); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			},
			logged: "no space left on device", failing: true,
			restore: func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "file removed",
			inject: func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
			logged:  "decision log reopened",
			restore: func(*testing.T, string) {},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.log")
			var dlog *decisionlog.Log
			r := launch(t, serveOpts{
				observer: func(met *metrics.Metrics, log *slog.Logger) engine.Observer {
					var err error
					dlog, err = decisionlog.Open(path, decisionlog.Options{Logger: log, ReopenInterval: 20 * time.Millisecond})
					if err != nil {
						t.Fatal(err)
					}
					if err := dlog.Register(met.Registry()); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { dlog.Close() }) // runs after the server has stopped
					return dlog
				},
				config: func(c *Config) {
					c.StatusSections = map[string]func() any{"decision_log": func() any {
						return map[string]uint64{"errors": dlog.Errors(), "dropped": dlog.Dropped()}
					}}
				},
			})
			n := 0
			// ask decides one allowed request with a path of its own, so
			// its line can be looked for; the answer must be unaffected.
			ask := func() string {
				n++
				tag := fmt.Sprintf("dlog-probe-%d", n)
				if a := r.grpcCheck("GET", allowedPath+"/"+tag, alice, nil); a.reason != "allowed" {
					t.Fatalf("%s: answer %s, want allowed", tc.name, a.reason)
				}
				return tag
			}
			inFile := func(tag string) bool {
				b, _ := os.ReadFile(path)
				return strings.Contains(string(b), tag)
			}
			first := ask()
			eventually(t, "a line in the log file", 15*time.Second, func() bool { return inFile(first) })

			tc.inject(t, path)
			eventually(t, tc.name+": logged", 15*time.Second, func() bool {
				ask()
				return strings.Contains(r.logs.String(), tc.logged)
			})
			if tc.failing {
				if got := r.metric("tenantgate_decision_log_errors_total"); got == "0" || got == "" {
					t.Errorf("tenantgate_decision_log_errors_total = %q, want the failures counted", got)
				}
				sec, _ := r.statusMap()["decision_log"].(map[string]any)
				if errs, _ := sec["errors"].(float64); errs == 0 {
					t.Errorf("/v1/status decision_log = %v, want its errors counted", sec)
				}
			}

			tc.restore(t, path)
			eventually(t, tc.name+": lines land in the file again", 15*time.Second, func() bool { return inFile(ask()) })
		})
	}
}

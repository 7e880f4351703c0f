package server

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
)

// eventually polls cond until it holds, for at most limit. Reloads are
// asynchronous; the bound is generous so a slow machine does not fail the
// test, and the time taken is logged (the 1 s promise is shown, not timed).
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, limit)
}

func (h *harness) status() engine.Status {
	h.t.Helper()
	resp, err := http.Get("http://" + h.httpAddr + "/v1/status")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st engine.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) metric(name string) string {
	h.t.Helper()
	resp, err := http.Get("http://" + h.httpAddr + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// bobBranch is the probe: bob is limited to hq in the demo data; the edits
// below give him branch-1 too.
func (h *harness) bobBranch() string {
	return h.grpcCheck("GET", "/api/v1/customers/contoso/locations/branch-1/vbr-jobs", "bob@contoso.example", nil).reason
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameInto writes content to a temp file beside path and renames it over
// path, as vim, sed -i and most deploy tools do.
func renameInto(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestHotReload(t *testing.T) {
	h := start(t)
	users := filepath.Join(h.dataDir, "users.yaml")
	orig, err := os.ReadFile(users)
	if err != nil {
		t.Fatal(err)
	}
	const bobLine = "locations: [hq]"
	if !strings.Contains(string(orig), bobLine) {
		t.Fatalf("demo users.yaml no longer has %q for bob; update this test", bobLine)
	}
	widened := strings.Replace(string(orig), bobLine, "locations: [hq, branch-1]", 1)
	if got := h.bobBranch(); got != "location_forbidden" {
		t.Fatalf("before any edit: %s", got)
	}
	rev0 := h.status().Revision

	t.Run("in-place write", func(t *testing.T) {
		writeFile(t, users, widened)
		eventually(t, "in-place edit in force", 5*time.Second, func() bool { return h.bobBranch() == "allowed" })
	})
	t.Run("rename over", func(t *testing.T) {
		renameInto(t, users, string(orig))
		eventually(t, "renamed edit in force", 5*time.Second, func() bool { return h.bobBranch() == "location_forbidden" })
		if rev := h.status().Revision; rev != rev0 {
			t.Errorf("same content, revision %s, want %s", rev, rev0)
		}
	})

	bad := []struct {
		name, file, content, want string
	}{
		{"yaml syntax", "users.yaml", string(orig) + "\n  : [unclosed\n", "users.yaml"},
		{"unknown field", "users.yaml", strings.Replace(string(orig), bobLine, bobLine+"\n    colour: red", 1), "colour"},
		{"unknown parent", "customers.yaml", "customers:\n  orphan:\n    type: reseller\n    parent: nobody\n", "nobody"},
		{"duplicate id across files", "more.yaml", "users:\n  bob@contoso.example:\n    customer: contoso\n    role: company-user\n", "bob@contoso.example"},
		{"rego compile error", "", "", "authz.rego"},
	}
	for _, tc := range bad {
		t.Run("bad edit "+tc.name, func(t *testing.T) {
			failures := h.metric(`tenantgate_reloads_total{result="failure"}`)
			var restore func()
			if tc.file == "" {
				pol := filepath.Join(h.engine.Snapshot().Policy.Files()[0])
				src, err := os.ReadFile(pol)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, pol, string(src)+"\nbroken if {\n")
				restore = func() { writeFile(t, pol, string(src)) }
			} else {
				path := filepath.Join(h.dataDir, tc.file)
				prev, err := os.ReadFile(path)
				existed := err == nil
				if tc.file == "customers.yaml" {
					writeFile(t, path, string(prev)+strings.TrimPrefix(tc.content, "customers:\n"))
				} else {
					writeFile(t, path, tc.content)
				}
				restore = func() {
					if existed {
						writeFile(t, path, string(prev))
					} else {
						os.Remove(path)
					}
				}
			}
			eventually(t, "bad edit reported", 5*time.Second, func() bool {
				return h.metric(`tenantgate_reloads_total{result="failure"}`) != failures
			})
			st := h.status()
			if st.Revision != rev0 || !strings.Contains(st.LastError, tc.want) {
				t.Errorf("status after bad edit: revision %s (want %s), error %q (want it to name %q)", st.Revision, rev0, st.LastError, tc.want)
			}
			if h.metric("tenantgate_reload_failing") != "1" {
				t.Error("tenantgate_reload_failing is not 1")
			}
			if got := h.bobBranch(); got != "location_forbidden" {
				t.Errorf("during bad edit the last good snapshot must serve: got %s", got)
			}
			restore()
			eventually(t, "recovered", 5*time.Second, func() bool { return h.status().LastError == "" })
			if h.status().Revision != rev0 || h.metric("tenantgate_reload_failing") != "0" {
				t.Error("did not recover to the original revision")
			}
		})
	}
}

// TestConfigMapSwap: a Kubernetes ConfigMap volume is a directory of
// symlinks through ..data, swapped atomically by renaming a new ..data.
func TestConfigMapSwap(t *testing.T) {
	h := start(t)
	users := filepath.Join(h.dataDir, "users.yaml")
	cust := filepath.Join(h.dataDir, "customers.yaml")
	usersSrc, _ := os.ReadFile(users)
	custSrc, _ := os.ReadFile(cust)

	// Turn the data dir into a ConfigMap layout in place.
	mkVersion := func(name, usersYAML string) {
		dir := filepath.Join(h.dataDir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "users.yaml"), usersYAML)
		writeFile(t, filepath.Join(dir, "customers.yaml"), string(custSrc))
	}
	swap := func(name string) {
		tmp := filepath.Join(h.dataDir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(h.dataDir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	mkVersion("..2026_11_23_00_00_00.000000001", string(usersSrc))
	swap("..2026_11_23_00_00_00.000000001")
	for _, f := range []string{users, cust} {
		os.Remove(f)
		if err := os.Symlink(filepath.Join("..data", filepath.Base(f)), f); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "symlinked layout loads", 5*time.Second, func() bool {
		st := h.status()
		return st.LastError == "" && st.Reloads >= 2
	})
	if got := h.bobBranch(); got != "location_forbidden" {
		t.Fatalf("before swap: %s", got)
	}
	mkVersion("..2026_11_23_00_00_01.000000002", strings.Replace(string(usersSrc), "locations: [hq]", "locations: [hq, branch-1]", 1))
	swap("..2026_11_23_00_00_01.000000002")
	os.RemoveAll(filepath.Join(h.dataDir, "..2026_11_23_00_00_00.000000001"))
	eventually(t, "ConfigMap swap in force", 5*time.Second, func() bool { return h.bobBranch() == "allowed" })
}

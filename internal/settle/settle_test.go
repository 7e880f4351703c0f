package settle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

const (
	customersYAML = "customers:\n  contoso:\n    type: end-customer\n"
	usersYAML     = "users:\n  alice@contoso.example:\n    customer: contoso\n    role: company-owner\n"
)

// hooked is a real engine.Dirs whose Load runs a hook after each read: the
// hook plays a writer whose change lands while the reload is reading.
type hooked struct {
	engine.Dirs
	calls atomic.Int32
	after func(call int32)
}

func (h *hooked) Load(ctx context.Context) (*tenant.Data, []policy.File, error) {
	d, p, err := h.Dirs.Load(ctx)
	n := h.calls.Add(1)
	if h.after != nil {
		h.after(n)
	}
	return d, p, err
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dataDir(t *testing.T, users string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "customers.yaml"), customersYAML)
	writeFile(t, filepath.Join(dir, "users.yaml"), users)
	return dir
}

func TestWrap(t *testing.T) {
	const quiet = 20 * time.Millisecond
	tests := []struct {
		name      string
		users     string              // users.yaml before the first read
		after     func(string, int32) // the writer, given the data dir and the read number
		wantCalls int32
		wantUsers int
		wantErr   error
	}{
		{
			name: "stable files: one read", users: usersYAML,
			wantCalls: 1, wantUsers: 1,
		},
		{
			// The torn read the package exists for: the reload reads
			// users.yaml just truncated (valid data: no users), and the
			// write lands during the quiet interval.
			name: "truncated during the read: read again", users: "",
			after: func(dir string, n int32) {
				if n == 1 {
					os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(usersYAML), 0o644)
				}
			},
			wantCalls: 2, wantUsers: 1,
		},
		{
			name: "a file added during the read", users: usersYAML,
			after: func(dir string, n int32) {
				if n == 1 {
					os.WriteFile(filepath.Join(dir, "more.yaml"), []byte("users:\n  bob@contoso.example:\n    customer: contoso\n    role: company-user\n"), 0o644)
				}
			},
			wantCalls: 2, wantUsers: 2,
		},
		{
			name: "same size and content, renamed over: a new inode", users: usersYAML,
			after: func(dir string, n int32) {
				if n == 1 {
					p := filepath.Join(dir, "users.yaml")
					fi, _ := os.Stat(p)
					tmp := filepath.Join(dir, ".users.tmp")
					os.WriteFile(tmp, []byte(usersYAML), 0o644)
					os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
					os.Rename(tmp, p)
				}
			},
			wantCalls: 2, wantUsers: 1,
		},
		{
			name: "never settles: an error, no data", users: usersYAML,
			after: func(dir string, n int32) {
				os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(usersYAML+"# "+strings.Repeat("x", int(n))+"\n"), 0o644)
			},
			wantCalls: MaxAttempts, wantErr: ErrUnsettled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := dataDir(t, tc.users)
			h := &hooked{Dirs: engine.Dirs{Data: dir, Policies: "../../policies"}}
			if tc.after != nil {
				h.after = func(n int32) { tc.after(dir, n) }
			}
			start := time.Now()
			d, mods, err := Wrap(h, quiet).Load(context.Background())
			if got := h.calls.Load(); got != tc.wantCalls {
				t.Errorf("%d reads, want %d", got, tc.wantCalls)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || d != nil || mods != nil {
					t.Fatalf("got %v (data %v), want %v and no data", err, d != nil, tc.wantErr)
				}
				if !strings.Contains(err.Error(), dir) {
					t.Errorf("error %q does not name the data dir", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Users) != tc.wantUsers || len(mods) == 0 {
				t.Errorf("%d users and %d modules, want %d users and the policies", len(d.Users), len(mods), tc.wantUsers)
			}
			// The result was unchanged for the quiet interval after its read.
			if el := time.Since(start); el < quiet {
				t.Errorf("returned after %v, before the quiet interval %v", el, quiet)
			}
		})
	}
}

func TestWrapFailsFast(t *testing.T) {
	dir := dataDir(t, "users: [not, a, mapping]\n")
	h := &hooked{Dirs: engine.Dirs{Data: dir, Policies: "../../policies"}}
	// A quiet interval no test would wait for: a bad read must not wait.
	_, _, err := Wrap(h, time.Hour).Load(context.Background())
	if err == nil || errors.Is(err, ErrUnsettled) || h.calls.Load() != 1 {
		t.Fatalf("got %v after %d reads, want the validation error after one", err, h.calls.Load())
	}
}

func TestWrapCancelled(t *testing.T) {
	h := &hooked{Dirs: engine.Dirs{Data: dataDir(t, usersYAML), Policies: "../../policies"}}
	ctx, cancel := context.WithCancel(context.Background())
	h.after = func(int32) { cancel() }
	if _, _, err := Wrap(h, time.Hour).Load(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestWrapZeroIsIdentity(t *testing.T) {
	src := engine.Dirs{Data: "d", Policies: "p"}
	if got := Wrap(src, 0); got != engine.Source(src) {
		t.Errorf("Wrap(src, 0) = %v, want src itself", got)
	}
	if got := Wrap(src, time.Second).Watched(); len(got) != 2 || got[0] != "d" || got[1] != "p" {
		t.Errorf("Watched() = %v", got)
	}
}

func TestStamp(t *testing.T) {
	type step struct {
		name   string
		change func(t *testing.T, dir string)
		same   bool
	}
	steps := []step{
		{"reading a file changes nothing", func(t *testing.T, dir string) {
			if _, err := os.ReadFile(filepath.Join(dir, "users.yaml")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"an in-place write", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "users.yaml"), usersYAML+"# edited\n")
		}, false},
		{"a file added", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "z.yaml"), "x")
		}, false},
		{"a file removed", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "z.yaml")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a file no loader reads added", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "z.txt"), "x")
		}, true},
		{"a symlink added", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, ".a"), "same")
			writeFile(t, filepath.Join(dir, ".b"), "same")
			if err := os.Symlink(".a", filepath.Join(dir, "link.yaml")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the symlink swapped to another target with the same content", func(t *testing.T, dir string) {
			tmp := filepath.Join(dir, ".link.tmp")
			if err := os.Symlink(".b", tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, filepath.Join(dir, "link.yaml")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the directory removed", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	dir := dataDir(t, usersYAML)
	prev := Stamp([]string{dir})
	if again := Stamp([]string{dir}); again != prev {
		t.Fatal("two stamps of an unchanged dir differ")
	}
	for _, s := range steps {
		s.change(t, dir)
		got := Stamp([]string{dir})
		if (got == prev) != s.same {
			t.Errorf("%s: stamp unchanged = %t, want %t", s.name, got == prev, s.same)
		}
		prev = got
	}
}

// TestUnrelatedFilesDoNotHoldReloads: a file the loaders never read (a log
// appended to all the time) must not keep every reload from settling, or a
// revocation would never take effect.
func TestUnrelatedFilesDoNotHoldReloads(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("users.yaml", "users: {}\n")
	before := Stamp([]string{dir})
	write("audit.log", "a line\n")
	write(".users.yaml.swp", "x")
	write("notes.txt", "x")
	if Stamp([]string{dir}) != before {
		t.Fatal("a file no loader reads changed the stamp")
	}
	write("users.yaml", "users: {a: {}}\n")
	if Stamp([]string{dir}) == before {
		t.Fatal("a data file changed and the stamp did not")
	}
}

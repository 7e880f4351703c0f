package watch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testDebounce = 20 * time.Millisecond
	// callBound is how long a test waits for a call that must come: generous,
	// so a loaded CI machine running -race does not flake.
	callBound = 3 * time.Second
	// quiet is how long without calls counts as settled, and how long a test
	// waits to be sure a call does not come: many debounce intervals.
	quiet = 10 * testDebounce
	// burstWrites quick writes must cause far fewer calls than writes:
	// maxBurstCalls, loosened by assertBatched only if the burst was slow.
	burstWrites   = 20
	maxBurstCalls = 3
)

// recorder counts onChange calls and checks they never overlap.
type recorder struct {
	calls    chan struct{}
	n        atomic.Int64
	inFlight atomic.Int32
	overlap  atomic.Bool
	hold     time.Duration // how long each onChange takes
}

func (r *recorder) onChange() {
	if r.inFlight.Add(1) > 1 {
		r.overlap.Store(true)
	}
	time.Sleep(r.hold)
	r.inFlight.Add(-1)
	r.n.Add(1)
	select {
	case r.calls <- struct{}{}:
	default:
	}
}

// waitCall fails the test unless onChange is called within callBound.
func (r *recorder) waitCall(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.calls:
	case <-time.After(callBound):
		t.Fatalf("%s: onChange not called within %v", what, callBound)
	}
}

// settle waits until no call has come for the quiet interval and returns the
// total number of calls so far.
func (r *recorder) settle(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(callBound)
	for time.Now().Before(deadline) {
		select {
		case <-r.calls:
		case <-time.After(quiet):
			return r.n.Load()
		}
	}
	t.Fatalf("onChange still being called after %v", callBound)
	return 0
}

// noCall fails the test if onChange is called within the quiet interval.
func (r *recorder) noCall(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.calls:
		t.Fatalf("%s: onChange called, want no call", what)
	case <-time.After(quiet):
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a watcher on paths until the test ends, and checks that Run
// returns nil promptly when cancelled.
func start(t *testing.T, paths ...string) *recorder {
	t.Helper()
	return startWith(t, &recorder{}, paths...)
}

func startWith(t *testing.T, r *recorder, paths ...string) *recorder {
	t.Helper()
	return startOpts(t, r, opts{}, paths...)
}

// opts changes what start builds: zero values keep New's defaults.
type opts struct {
	backend func(*slog.Logger) (backend, error)
	maxHold time.Duration
	log     *slog.Logger
}

func startOpts(t *testing.T, r *recorder, o opts, paths ...string) *recorder {
	t.Helper()
	r.calls = make(chan struct{}, 1000)
	if o.backend == nil {
		o.backend = newBackend
	}
	if o.log == nil {
		o.log = testLogger(t)
	}
	w, err := newWith(paths, testDebounce, o.log, o.backend)
	if err != nil {
		t.Fatalf("New(%v): %v", paths, err)
	}
	if o.maxHold > 0 {
		w.maxHold = o.maxHold
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, r.onChange) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(callBound):
			t.Errorf("Run did not return within %v of cancel", callBound)
		}
		if r.overlap.Load() {
			t.Errorf("onChange was called concurrently")
		}
	})
	return r
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// replaceByRename writes content the way vim, sed -i and most config tools
// do: to a temporary file in the same directory, then renamed over path.
func replaceByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	rename(t, tmp, path)
}

// configMap lays out dir the way the kubelet's atomic writer does:
// ..<ts>/<files>, ..data -> ..<ts>, and <file> -> ..data/<file>.
func configMap(t *testing.T, dir, ts string, files map[string]string) {
	t.Helper()
	mkdir(t, filepath.Join(dir, ts))
	for name, content := range files {
		writeFile(t, filepath.Join(dir, ts, name), content)
	}
	symlink(t, ts, filepath.Join(dir, "..data"))
	for name := range files {
		symlink(t, filepath.Join("..data", name), filepath.Join(dir, name))
	}
}

// configMapSwap updates a configMap layout as the kubelet does: a new
// timestamped dir, a ..data_tmp symlink renamed over ..data, the old dir
// removed.
func configMapSwap(t *testing.T, dir, oldTS, newTS string, files map[string]string) {
	t.Helper()
	mkdir(t, filepath.Join(dir, newTS))
	for name, content := range files {
		writeFile(t, filepath.Join(dir, newTS, name), content)
	}
	symlink(t, newTS, filepath.Join(dir, "..data_tmp"))
	rename(t, filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	if err := os.RemoveAll(filepath.Join(dir, oldTS)); err != nil {
		t.Fatal(err)
	}
}

// burst writes path n times in quick succession, in place.
func burst(t *testing.T, path string, n int) {
	t.Helper()
	for i := range n {
		writeFile(t, path, "version: "+strconv.Itoa(i)+"\n")
		time.Sleep(time.Millisecond)
	}
}

// assertBatched runs change (a burst of filesystem changes) and checks it
// causes at least one call and only a few: maxBurstCalls, plus two per
// debounce interval the burst itself took. On an idle machine a burst takes a
// debounce interval or two, so the bound stays far below one call per write;
// on a loaded one the writes themselves get spread out, and the watcher is
// right to fire between them.
func assertBatched(t *testing.T, r *recorder, what string, change func()) {
	t.Helper()
	before := r.settle(t)
	began := time.Now()
	change()
	took := time.Since(began)
	r.waitCall(t, what)
	got := r.settle(t) - before
	bound := maxBurstCalls + 2*int64(took/testDebounce)
	if got < 1 || got > bound {
		t.Errorf("%s: %d onChange calls for a burst of %v, want 1..%d", what, got, took, bound)
	}
}

func TestDirectoryChanges(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		change func(t *testing.T, dir string)
	}{
		{
			name:   "in-place writes",
			setup:  func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "users.yaml"), "a\n") },
			change: func(t *testing.T, dir string) { burst(t, filepath.Join(dir, "users.yaml"), burstWrites) },
		},
		{
			name:  "write temp then rename",
			setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "users.yaml"), "a\n") },
			change: func(t *testing.T, dir string) {
				for i := range burstWrites {
					replaceByRename(t, filepath.Join(dir, "users.yaml"), strconv.Itoa(i))
					time.Sleep(time.Millisecond)
				}
			},
		},
		{
			name: "new file",
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "customers.yaml"), "customers: {}\n")
			},
		},
		{
			name:   "file deleted",
			setup:  func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "users.yaml"), "a\n") },
			change: func(t *testing.T, dir string) { remove(t, filepath.Join(dir, "users.yaml")) },
		},
		{
			name: "configmap swap",
			setup: func(t *testing.T, dir string) {
				configMap(t, dir, "..2024_01_01_00_00_00.000", map[string]string{"users.yaml": "a\n", "customers.yaml": "b\n"})
			},
			change: func(t *testing.T, dir string) {
				configMapSwap(t, dir, "..2024_01_01_00_00_00.000", "..2024_01_02_00_00_00.000",
					map[string]string{"users.yaml": "c\n", "customers.yaml": "d\n"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			r := start(t, dir)
			assertBatched(t, r, tt.name, func() { tt.change(t, dir) })
		})
	}
}

// A kubelet updates a ConfigMap again and again; each swap must be seen, which
// needs the watches re-resolved after the old timestamped dir is gone.
func TestConfigMapRepeatedSwaps(t *testing.T) {
	tests := []struct {
		name  string
		watch func(dir string) string
	}{
		{name: "directory", watch: func(dir string) string { return dir }},
		{name: "file through ..data", watch: func(dir string) string { return filepath.Join(dir, "jwks.json") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := "..2024_01_01_00_00_00.000"
			configMap(t, dir, ts, map[string]string{"jwks.json": "{}", "users.yaml": "a\n"})
			r := start(t, tt.watch(dir))
			for i := range 3 {
				next := "..2024_01_0" + strconv.Itoa(i+2) + "_00_00_00.000"
				assertBatched(t, r, "swap "+strconv.Itoa(i), func() {
					configMapSwap(t, dir, ts, next, map[string]string{"jwks.json": `{"keys":[]}`, "users.yaml": "b\n"})
				})
				ts = next
			}
		})
	}
}

func TestWatchedFile(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	writeFile(t, jwks, "{}")
	writeFile(t, filepath.Join(dir, "other.txt"), "x")
	r := start(t, jwks)

	// Other entries of the parent directory are not the file.
	writeFile(t, filepath.Join(dir, "other.txt"), "y")
	writeFile(t, filepath.Join(dir, "new.json"), "{}")
	r.noCall(t, "write to a sibling")

	assertBatched(t, r, "replace by rename", func() { replaceByRename(t, jwks, `{"keys":[]}`) })
	assertBatched(t, r, "in-place write", func() { burst(t, jwks, burstWrites) })
	assertBatched(t, r, "delete", func() { remove(t, jwks) })
	assertBatched(t, r, "recreate", func() { writeFile(t, jwks, "{}") })
}

func TestConfigMapFileIgnoresSiblings(t *testing.T) {
	dir := t.TempDir()
	configMap(t, dir, "..2024_01_01_00_00_00.000", map[string]string{"jwks.json": "{}"})
	r := start(t, filepath.Join(dir, "jwks.json"))

	writeFile(t, filepath.Join(dir, "other.txt"), "y")
	r.noCall(t, "write to a sibling")
	assertBatched(t, r, "swap", func() {
		configMapSwap(t, dir, "..2024_01_01_00_00_00.000", "..2024_01_02_00_00_00.000", map[string]string{"jwks.json": "[]"})
	})
}

func TestSymlinkedDirectory(t *testing.T) {
	root := t.TempDir()
	real1, real2 := filepath.Join(root, "real1"), filepath.Join(root, "real2")
	mkdir(t, real1)
	mkdir(t, real2)
	data := filepath.Join(root, "data")
	symlink(t, "real1", data)
	r := start(t, data)

	assertBatched(t, r, "write in the link's target", func() { burst(t, filepath.Join(real1, "users.yaml"), burstWrites) })
	// Retarget the link atomically, as `ln -sfn` plus mv -T would.
	assertBatched(t, r, "retarget", func() {
		symlink(t, "real2", filepath.Join(root, "data.tmp"))
		rename(t, filepath.Join(root, "data.tmp"), data)
	})
	assertBatched(t, r, "write in the new target", func() { writeFile(t, filepath.Join(real2, "users.yaml"), "b\n") })
	burst(t, filepath.Join(real1, "users.yaml"), 3)
	r.noCall(t, "write in the old target")
}

func TestEntrySymlinkedElsewhere(t *testing.T) {
	root := t.TempDir()
	data, other := filepath.Join(root, "data"), filepath.Join(root, "other")
	mkdir(t, data)
	mkdir(t, other)
	writeFile(t, filepath.Join(other, "users.yaml"), "a\n")
	symlink(t, filepath.Join(other, "users.yaml"), filepath.Join(data, "users.yaml"))
	r := start(t, data)

	assertBatched(t, r, "in-place write of the target", func() { burst(t, filepath.Join(other, "users.yaml"), burstWrites) })
	assertBatched(t, r, "target replaced by rename", func() { replaceByRename(t, filepath.Join(other, "users.yaml"), "b\n") })
	writeFile(t, filepath.Join(other, "unrelated.txt"), "x")
	r.noCall(t, "write to a file no entry points at")
}

func TestDirectoryDeletedAndRecreated(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	mkdir(t, data)
	writeFile(t, filepath.Join(data, "users.yaml"), "a\n")
	r := start(t, data)

	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	r.waitCall(t, "directory deleted")
	r.settle(t)

	mkdir(t, data)
	writeFile(t, filepath.Join(data, "users.yaml"), "b\n")
	r.waitCall(t, "directory recreated")

	// The new directory is really watched, not just polled once.
	assertBatched(t, r, "write in the recreated directory", func() { burst(t, filepath.Join(data, "users.yaml"), burstWrites) })
}

// A constant stream of writes must not postpone the reload forever.
func TestContinuousWritesStillFire(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	writeFile(t, path, "a\n")
	r := start(t, dir)

	// Writes every 5 ms never leave the 20 ms quiet period; only the
	// maxWait cap (80 ms) can fire during the stream.
	stop := time.Now().Add(30 * maxWaitFactor * testDebounce)
	firstDuring := false
	for i := 0; time.Now().Before(stop); i++ {
		writeFile(t, path, strconv.Itoa(i))
		time.Sleep(5 * time.Millisecond)
		if r.n.Load() > 0 {
			firstDuring = true
			break
		}
	}
	if !firstDuring {
		t.Fatalf("no onChange call during %v of continuous writes", 30*maxWaitFactor*testDebounce)
	}
}

// onChange here takes longer than the maxWait cap while writes keep coming:
// calls must queue, not overlap.
func TestOnChangeNeverConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	r := startWith(t, &recorder{hold: 2 * maxWaitFactor * testDebounce}, dir)
	// Keep writing until a second call has finished: all through the first
	// call, events arrive that would start another one if Run allowed it.
	deadline := time.Now().Add(callBound)
	for i := 0; r.n.Load() < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d onChange calls after %v of writes, want 2", r.n.Load(), callBound)
		}
		writeFile(t, path, strconv.Itoa(i))
		time.Sleep(5 * time.Millisecond)
	}
	r.settle(t)
	if r.overlap.Load() {
		t.Fatal("onChange was called concurrently")
	}
}

func TestRunEndsOnCancel(t *testing.T) {
	dir := t.TempDir()
	w, err := New([]string{dir}, testDebounce, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var calls atomic.Int64
	go func() { done <- w.Run(ctx, func() { calls.Add(1) }) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(callBound):
		t.Fatal("Run did not return after cancel")
	}
	// Closed: changes after Run returned call nothing.
	writeFile(t, filepath.Join(dir, "users.yaml"), "a\n")
	time.Sleep(quiet)
	if n := calls.Load(); n != 0 {
		t.Errorf("onChange called %d times after Run returned", n)
	}
	if err := w.Run(context.Background(), func() {}); err == nil {
		t.Error("second Run: got nil error, want one")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		paths    []string
		debounce time.Duration
	}{
		{name: "no paths", paths: nil, debounce: testDebounce},
		{name: "empty path", paths: []string{""}, debounce: testDebounce},
		{name: "missing path", paths: []string{filepath.Join(dir, "nope")}, debounce: testDebounce},
		{name: "zero debounce", paths: []string{dir}, debounce: 0},
		{name: "negative debounce", paths: []string{dir}, debounce: -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.paths, tt.debounce, testLogger(t))
			if err == nil {
				w.close()
				t.Fatalf("New(%q, %v): got nil error", tt.paths, tt.debounce)
			}
		})
	}
}

func TestRunNilOnChange(t *testing.T) {
	w, err := New([]string{t.TempDir()}, testDebounce, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if err := w.Run(context.Background(), nil); err == nil {
		t.Fatal("Run(nil): got nil error")
	}
}

func TestChain(t *testing.T) {
	// chain reports resolved directories, so start from a resolved root.
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(root, "cm", "..ts1"))
	writeFile(t, filepath.Join(root, "cm", "..ts1", "users.yaml"), "a")
	symlink(t, "..ts1", filepath.Join(root, "cm", "..data"))
	symlink(t, "..data/users.yaml", filepath.Join(root, "cm", "users.yaml"))
	mkdir(t, filepath.Join(root, "other"))
	writeFile(t, filepath.Join(root, "other", "f.yaml"), "a")
	symlink(t, filepath.Join(root, "other", "f.yaml"), filepath.Join(root, "abs.yaml"))
	symlink(t, "hop2", filepath.Join(root, "hop1"))
	symlink(t, "other/f.yaml", filepath.Join(root, "hop2"))
	symlink(t, "loop", filepath.Join(root, "loop"))
	symlink(t, "gone/f.yaml", filepath.Join(root, "dangling"))

	tests := []struct {
		name         string
		rel          string
		wantLinks    []link
		wantResolved string
	}{
		{
			name:         "plain file",
			rel:          "other/f.yaml",
			wantLinks:    []link{{root + "/other", "f.yaml"}},
			wantResolved: root + "/other/f.yaml",
		},
		{
			name: "configmap file through ..data",
			rel:  "cm/users.yaml",
			wantLinks: []link{
				{root + "/cm", "users.yaml"},
				{root + "/cm", "..data"},
				{root + "/cm/..ts1", "users.yaml"},
			},
			wantResolved: root + "/cm/..ts1/users.yaml",
		},
		{
			name:         "absolute target",
			rel:          "abs.yaml",
			wantLinks:    []link{{root, "abs.yaml"}, {root + "/other", "f.yaml"}},
			wantResolved: root + "/other/f.yaml",
		},
		{
			name:         "two hops",
			rel:          "hop1",
			wantLinks:    []link{{root, "hop1"}, {root, "hop2"}, {root + "/other", "f.yaml"}},
			wantResolved: root + "/other/f.yaml",
		},
		{
			name:         "dangling stops at the missing entry",
			rel:          "dangling",
			wantLinks:    []link{{root, "dangling"}, {root, "gone"}},
			wantResolved: root + "/gone/f.yaml",
		},
		{
			name:         "missing file",
			rel:          "other/nope.yaml",
			wantLinks:    []link{{root + "/other", "nope.yaml"}},
			wantResolved: root + "/other/nope.yaml",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			links, resolved := chain(root, tt.rel)
			if !slices.Equal(links, tt.wantLinks) {
				t.Errorf("links = %v, want %v", links, tt.wantLinks)
			}
			if resolved != tt.wantResolved {
				t.Errorf("resolved = %q, want %q", resolved, tt.wantResolved)
			}
		})
	}

	t.Run("loop ends", func(t *testing.T) {
		links, _ := chain(root, "loop")
		if len(links) != maxHops+1 {
			t.Errorf("%d links for a self-loop, want %d", len(links), maxHops+1)
		}
	})
}

// The portable backend (fsnotify, used off Linux) reports no closes: the
// debounce alone batches in-place writes, and every kind of edit is still
// seen. It runs on Linux too, so the fallback is tested where CI runs.
func TestPortableBackend(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	writeFile(t, users, "a\n")
	r := startOpts(t, &recorder{}, opts{backend: newPortable}, dir)

	assertBatched(t, r, "in-place writes", func() { burst(t, users, burstWrites) })
	assertBatched(t, r, "replace by rename", func() { replaceByRename(t, users, "b\n") })
	assertBatched(t, r, "delete", func() { remove(t, users) })
	assertBatched(t, r, "configmap", func() {
		configMap(t, dir, "..2024_01_01_00_00_00.000", map[string]string{"users.yaml": "c\n"})
	})
	assertBatched(t, r, "configmap swap", func() {
		configMapSwap(t, dir, "..2024_01_01_00_00_00.000", "..2024_01_02_00_00_00.000", map[string]string{"users.yaml": "d\n"})
	})
}

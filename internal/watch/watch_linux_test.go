package watch

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
)

// pause is how long the writers below stop mid-file: the 1.5 s of the issue
// that found half files served, 75 debounce intervals.
const pause = 1500 * time.Millisecond

// openWriter opens path for writing in place, as an editor saving without a
// rename or `cat > file` does, and closes it when the test ends if the test
// has not.
func openWriter(t *testing.T, path string, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|flag, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func write(t *testing.T, f *os.File, s string) {
	t.Helper()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// noCallFor fails the test if onChange is called within d.
func (r *recorder) noCallFor(t *testing.T, d time.Duration, what string) {
	t.Helper()
	select {
	case <-r.calls:
		t.Fatalf("%s: onChange called, want no call for %v", what, d)
	case <-time.After(d):
	}
}

// A writer that stops mid-file must not have its half file read: no call
// comes while it pauses, and one comes once it closes the file. Each layout
// the watcher resolves is written in place.
func TestPausedWriterHeldUntilClose(t *testing.T) {
	const half, rest = "users:\n  bob@contoso.example:\n    role: company-administrator\n", "    locations: [hq]\n"
	tests := []struct {
		name string
		// setup lays out dir and returns the path to watch and the file the
		// writer writes in place.
		setup func(t *testing.T, dir string) (watched, file string)
		flag  int
	}{
		{
			name: "file in a watched directory",
			setup: func(t *testing.T, dir string) (string, string) {
				writeFile(t, filepath.Join(dir, "users.yaml"), "users: {}\n")
				return dir, filepath.Join(dir, "users.yaml")
			},
			flag: os.O_TRUNC,
		},
		{
			name: "new file in a watched directory",
			setup: func(t *testing.T, dir string) (string, string) {
				return dir, filepath.Join(dir, "more.yaml")
			},
			flag: os.O_CREATE | os.O_EXCL,
		},
		{
			name: "watched file",
			setup: func(t *testing.T, dir string) (string, string) {
				writeFile(t, filepath.Join(dir, "hs256.secret"), "old")
				return filepath.Join(dir, "hs256.secret"), filepath.Join(dir, "hs256.secret")
			},
			flag: os.O_TRUNC,
		},
		{
			name: "target of an entry symlinked elsewhere",
			setup: func(t *testing.T, dir string) (string, string) {
				data, other := filepath.Join(dir, "data"), filepath.Join(dir, "other")
				mkdir(t, data)
				mkdir(t, other)
				writeFile(t, filepath.Join(other, "users.yaml"), "users: {}\n")
				symlink(t, filepath.Join(other, "users.yaml"), filepath.Join(data, "users.yaml"))
				return data, filepath.Join(other, "users.yaml")
			},
			flag: os.O_TRUNC,
		},
		{
			name: "ConfigMap file behind ..data",
			setup: func(t *testing.T, dir string) (string, string) {
				configMap(t, dir, "..2024_01_01_00_00_00.000", map[string]string{"users.yaml": "users: {}\n"})
				return filepath.Join(dir, "users.yaml"), filepath.Join(dir, "..2024_01_01_00_00_00.000", "users.yaml")
			},
			flag: os.O_TRUNC,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			watched, file := tt.setup(t, t.TempDir())
			r := start(t, watched)
			f := openWriter(t, file, tt.flag)
			write(t, f, half)
			r.noCallFor(t, pause, "writer paused mid-file")
			write(t, f, rest)
			closedAt := time.Now()
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			r.waitCall(t, "writer closed the file")
			t.Logf("onChange %v after the close", time.Since(closedAt).Round(time.Millisecond))
		})
	}
}

// A name that stops naming the file being written releases the hold: what a
// reload reads under it is no longer being written.
func TestHoldReleasedWhenNameNoLongerWritten(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"replaced by rename", func(t *testing.T, path string) { replaceByRename(t, path, "users: {}\n") }},
		{"deleted", func(t *testing.T, path string) { remove(t, path) }},
		{"renamed away", func(t *testing.T, path string) { rename(t, path, path+".old") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			users := filepath.Join(dir, "users.yaml")
			writeFile(t, users, "users: {}\n")
			r := start(t, dir)
			f := openWriter(t, users, os.O_TRUNC)
			write(t, f, "users:\n")
			r.noCall(t, "writer paused mid-file")
			tt.change(t, users)
			r.waitCall(t, tt.name+" while its writer still has it open")
		})
	}
}

// An editor keeps its swap file open and writes it now and then for the
// whole session; hidden names are read by no loader and hold nothing back.
func TestHiddenFilesDoNotHold(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users.yaml"), "users: {}\n")
	r := start(t, dir)
	swp := openWriter(t, filepath.Join(dir, ".users.yaml.swp"), os.O_CREATE)
	write(t, swp, "swap")
	r.waitCall(t, "write to an open swap file")
	r.settle(t)
	assertBatched(t, r, "save while the swap file is open", func() { writeFile(t, filepath.Join(dir, "users.yaml"), "users: {}\n") })
}

// A writer that never closes holds reloads back for maxHold at most: then
// the file is read as it is, and the log names it.
func TestHoldEndsAtMaxHold(t *testing.T) {
	const hold = 25 * testDebounce
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	writeFile(t, users, "users: {}\n")
	logs := &syncbuf.Buffer{}
	r := startOpts(t, &recorder{}, opts{maxHold: hold, log: slog.New(slog.NewTextHandler(logs, nil))}, dir)

	f := openWriter(t, users, os.O_TRUNC)
	began := time.Now()
	write(t, f, "users:\n")
	r.waitCall(t, "writer that never closes")
	if took := time.Since(began); took < hold {
		t.Errorf("onChange %v after the write, before the %v hold ran out", took, hold)
	}
	if l := logs.String(); !strings.Contains(l, "still open for writing") || !strings.Contains(l, users) {
		t.Errorf("log does not warn about %s still open for writing:\n%s", users, l)
	}
	// Its close is a change like any other.
	r.settle(t)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r.waitCall(t, "close after the hold ran out")
}

// Two files written at once: the reload waits for both writers.
func TestHoldWaitsForEveryWriter(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "customers.yaml"), filepath.Join(dir, "users.yaml")
	writeFile(t, a, "customers: {}\n")
	writeFile(t, b, "users: {}\n")
	r := start(t, dir)
	fa, fb := openWriter(t, a, os.O_TRUNC), openWriter(t, b, os.O_TRUNC)
	write(t, fa, "customers:\n")
	write(t, fb, "users:\n")
	if err := fa.Close(); err != nil {
		t.Fatal(err)
	}
	r.noCallFor(t, 10*quiet, "one of two writers still mid-file")
	if err := fb.Close(); err != nil {
		t.Fatal(err)
	}
	r.waitCall(t, "both writers closed")
}

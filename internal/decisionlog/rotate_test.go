package decisionlog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/decisionlog"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
)

// logLines observes n decisions with paths /r/00000, /r/00001, ... in order.
// The queue is larger than n, so none is dropped.
func logLines(t *testing.T, l *decisionlog.Log, from, n int) {
	t.Helper()
	res := deny(401, "unauthenticated", "", "")
	for i := from; i < from+n; i++ {
		req := engine.Request{Method: "GET", Path: fmt.Sprintf("/r/%05d", i)}
		l.ObserveDecision(&req, &res, 0)
	}
}

// seqOf reads the sequence number back from a line.
func seqOf(t *testing.T, line string) int {
	t.Helper()
	var e struct{ Path string }
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("not a whole JSON line: %q: %v", line, err)
	}
	var n int
	if _, err := fmt.Sscanf(e.Path, "/r/%d", &n); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return n
}

// TestRotation: writing far more than the bound leaves at most MaxFiles+1
// files (PATH, PATH.1 ... PATH.N), each within the bound and of whole lines;
// read oldest to newest they hold one unbroken run of lines that ends with
// the newest line in PATH: nothing reordered, nothing lost but the oldest.
func TestRotation(t *testing.T) {
	const n = 2000 // lines of about 230 bytes: about 450 KB
	tests := []struct {
		name     string
		maxSize  int64
		maxFiles int // as Options take it: negative keeps none
		kept     int // rotated files expected
	}{
		{"three kept", 16 << 10, 3, 3},
		{"one kept", 16 << 10, 1, 1},
		{"none kept", 16 << 10, -1, 0},
		{"bound smaller than a batch and not a multiple of a line", 1000, 2, 2},
		{"default files", 16 << 10, 0, decisionlog.DefaultMaxFiles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "decisions.log")
			l, err := decisionlog.Open(path, decisionlog.Options{Logger: quiet(), MaxSize: tc.maxSize, MaxFiles: tc.maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			logLines(t, l, 0, n)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if l.Dropped() != 0 || l.Errors() != 0 {
				t.Fatalf("dropped %d, errors %d; want none", l.Dropped(), l.Errors())
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			want := []string{"decisions.log"}
			for i := 1; i <= tc.kept; i++ {
				want = append(want, fmt.Sprintf("decisions.log.%d", i))
			}
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Fatalf("files %v, want %v", names, want)
			}
			// Oldest first: PATH.N ... PATH.1, PATH.
			var seqs []int
			for i := tc.kept; i >= 0; i-- {
				name := path
				if i > 0 {
					name = fmt.Sprintf("%s.%d", path, i)
				}
				st, err := os.Stat(name)
				if err != nil {
					t.Fatal(err)
				}
				if st.Size() > tc.maxSize {
					t.Errorf("%s: %d bytes, over the %d bound", filepath.Base(name), st.Size(), tc.maxSize)
				}
				if perm := st.Mode().Perm(); perm&0o007 != 0 {
					t.Errorf("%s: mode %v, world-accessible", filepath.Base(name), perm)
				}
				lines := readLines(t, name)
				if len(lines) == 0 {
					t.Errorf("%s is empty", filepath.Base(name))
				}
				for _, ln := range lines {
					seqs = append(seqs, seqOf(t, ln))
				}
			}
			if len(seqs) == 0 || seqs[len(seqs)-1] != n-1 {
				t.Fatalf("the newest line (%d) is not last in %s", n-1, path)
			}
			for i := 1; i < len(seqs); i++ {
				if seqs[i] != seqs[i-1]+1 {
					t.Fatalf("line %d follows line %d: reordered or lost", seqs[i], seqs[i-1])
				}
			}
		})
	}
}

// TestRotationOversizedLine: a line longer than the bound is written whole,
// alone in a fresh file, never split or dropped.
func TestRotationOversizedLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	l, err := decisionlog.Open(path, decisionlog.Options{Logger: quiet(), MaxSize: 100, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	logLines(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{path + ".2", path + ".1", path} {
		lines := readLines(t, name)
		if len(lines) != 1 || seqOf(t, lines[0]) != i {
			t.Errorf("%s: %q, want line %d alone", filepath.Base(name), lines, i)
		}
	}
}

// TestRotationExistingFile: a file already over the bound at start (from an
// earlier run) is rotated at the first write.
func TestRotationExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.log")
	earlier := bytes.Repeat([]byte("earlier line\n"), 100)
	if err := os.WriteFile(path, earlier, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := decisionlog.Open(path, decisionlog.Options{Logger: quiet(), MaxSize: 1000, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	logLines(t, l, 0, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path + ".1"); err != nil || !bytes.Equal(got, earlier) {
		t.Fatalf("%s.1: %v, want the earlier file", path, err)
	}
	if lines := readLines(t, path); len(lines) != 1 || seqOf(t, lines[0]) != 0 {
		t.Fatalf("%s: %q, want the new line alone", path, lines)
	}
}

// TestRotationRenameFails: when PATH cannot be renamed (here PATH.1 is a
// directory in the way), the failure is counted and logged with the file,
// no line is lost, the log keeps writing to PATH, and once the obstacle is
// gone the next batch rotates.
func TestRotationRenameFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	if err := os.MkdirAll(filepath.Join(path+".1", "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	l, err := decisionlog.Open(path, decisionlog.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), MaxSize: 2000, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logLines(t, l, 0, 50) // about 11 KB
	eventually(t, "all 50 lines written", 10*time.Second, func() bool { return len(readLines(t, path)) == 50 })
	if l.Errors() == 0 {
		t.Fatal("the failed rotation was not counted")
	}
	if text := logs.String(); !strings.Contains(text, "rotation failing") || !strings.Contains(text, path) {
		t.Fatalf("the log does not say the rotation failed for %s:\n%s", path, text)
	}
	for i, ln := range readLines(t, path) {
		if seqOf(t, ln) != i {
			t.Fatalf("line %d of %s is %q", i, path, ln)
		}
	}

	if err := os.RemoveAll(path + ".1"); err != nil {
		t.Fatal(err)
	}
	logLines(t, l, 50, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, path+".1"); len(lines) != 50 {
		t.Errorf("%s.1: %d lines, want the 50 written while the rotation failed", path, len(lines))
	}
	if lines := readLines(t, path); len(lines) != 1 || seqOf(t, lines[0]) != 50 {
		t.Errorf("%s: %q, want line 50 alone", path, lines)
	}
}

// TestNoRotation: standard output (a writer given to New) is never rotated,
// and a negative MaxSize turns the bound off for a file (logrotate's job).
func TestNoRotation(t *testing.T) {
	t.Run("writer", func(t *testing.T) {
		var buf syncbuf.Buffer
		l := decisionlog.New(&buf, decisionlog.Options{Logger: quiet(), MaxSize: 100, MaxFiles: 1})
		logLines(t, l, 0, 100)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(buf.String(), "\n"); got != 100 {
			t.Fatalf("%d lines, want 100", got)
		}
	})
	t.Run("unbounded file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "decisions.log")
		l, err := decisionlog.Open(path, decisionlog.Options{Logger: quiet(), MaxSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		logLines(t, l, 0, 100)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 || len(readLines(t, path)) != 100 {
			t.Fatalf("%d files, %d lines; want one file of 100", len(entries), len(readLines(t, path)))
		}
	})
}

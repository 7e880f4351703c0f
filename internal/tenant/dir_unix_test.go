//go:build unix

package tenant

import (
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestLoadDirSkipsFIFO: reading a FIFO named like a data file would block
// the load (and so the reload) forever, so only regular files are read.
func TestLoadDirSkipsFIFO(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "customers.yaml"), dirCustomers)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	if want := []string{filepath.Join(dir, "customers.yaml")}; !slices.Equal(d.Files, want) {
		t.Errorf("Files: got %v, want %v", d.Files, want)
	}
}

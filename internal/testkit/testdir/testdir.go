// Package testdir gives tests their own copy of a directory (the
// repository's demo data or policies), so a test can edit files under a
// running server without touching the repository's.
package testdir

import (
	"os"
	"path/filepath"
	"testing"
)

// Copy copies the regular files directly in src into a new t.TempDir and
// returns its path; subdirectories are left out, as the loaders ignore them.
func Copy(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	CopyTo(t, src, dst)
	return dst
}

// CopyTo copies the regular files directly in src into dst, made if
// missing.
func CopyTo(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

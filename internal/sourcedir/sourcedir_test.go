package sourcedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct {
		name                 string
		data, policy, loaded bool
	}{
		{"users.yaml", true, false, true},
		{"users.yml", true, false, true},
		{".users.yaml.swp", false, false, false},
		{".hidden.yaml", false, false, false},
		{"users.yaml~", false, false, false},
		{"authz.rego", false, true, true},
		{"authz_test.rego", false, false, true},
		{".authz.rego", false, false, false},
		{"..data", false, false, true},
		{"README.md", false, false, false},
	}
	for _, tc := range tests {
		if got := IsData(tc.name); got != tc.data {
			t.Errorf("IsData(%q) = %t", tc.name, got)
		}
		if got := IsPolicy(tc.name); got != tc.policy {
			t.Errorf("IsPolicy(%q) = %t", tc.name, got)
		}
		if got := IsLoaded(tc.name); got != tc.loaded {
			t.Errorf("IsLoaded(%q) = %t", tc.name, got)
		}
	}
}

// TestRead: regular files of the kind, in name order, through a symlink (a
// ConfigMap mount), without subdirectories or other names; none is an error
// naming the directory.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "b.yaml"), "b")
	write(filepath.Join(dir, "a.yml"), "a")
	write(filepath.Join(dir, "notes.txt"), "x")
	write(filepath.Join(elsewhere, "target"), "c")
	if err := os.Symlink(filepath.Join(elsewhere, "target"), filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := Read(dir, Data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f.Name)+"="+string(f.Content))
	}
	if strings.Join(got, " ") != "a.yml=a b.yaml=b c.yaml=c" {
		t.Errorf("Read = %v", got)
	}
	if _, err := Read(dir, Policies); err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "no .rego files") {
		t.Errorf("no policies: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), Data); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing dir: %v", err)
	}
}

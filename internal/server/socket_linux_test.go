package server

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChmodSocketDoesNotFollowSymlinks: the socket gets SocketMode, and a
// path that has been swapped for a symlink (to a file, or to another socket)
// is refused without touching what it points to.
func TestChmodSocketDoesNotFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	if err := chmodSocket(sock, SocketMode); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(sock); err != nil || st.Mode().Perm() != SocketMode {
		t.Fatalf("socket mode %v (%v), want %v", st.Mode().Perm(), err, os.FileMode(SocketMode))
	}

	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"to a file": secret, "to a socket": sock} {
		t.Run(name, func(t *testing.T) {
			if err := os.Chmod(target, 0o600); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(t.TempDir(), "swapped.sock")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			err := chmodSocket(link, SocketMode)
			if err == nil || !strings.Contains(err.Error(), "no longer the socket") {
				t.Errorf("chmodSocket on a symlink: %v, want a refusal", err)
			}
			if st, _ := os.Stat(target); st.Mode().Perm() != 0o600 {
				t.Errorf("the link's target changed mode to %v", st.Mode().Perm())
			}
		})
	}
}

package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// TestListenerInUse: when any listener cannot bind, Run fails with an error
// naming it, and leaves nothing open behind: the other addresses are free
// again and no file watcher (an inotify descriptor) is left.
func TestListenerInUse(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "hs256.secret")
	if err := os.WriteFile(secret, []byte("test-secret-test-secret-test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := engine.Dirs{Data: "../../data", Policies: "../../policies"}
	for _, busy := range []string{"grpc", "http", "admin"} {
		t.Run(busy, func(t *testing.T) {
			addrs := map[string]string{}
			for _, name := range []string{"grpc", "http", "admin"} {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addrs[name] = l.Addr().String()
				if name == busy {
					defer l.Close() // held: this listener cannot bind
				} else {
					l.Close()
				}
			}
			before := inotifyFDs(t)
			e := engine.New(engine.Options{Source: dirs, Identity: &identity.Config{HS256SecretFile: secret},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := Run(ctx, Config{GRPCAddr: addrs["grpc"], HTTPAddr: addrs["http"], AdminAddr: addrs["admin"],
				Engine: e, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Watch: dirs.Watched()})
			if err == nil || !strings.Contains(err.Error(), busy+" listener") {
				t.Fatalf("Run: %v, want an error naming the %s listener", err, busy)
			}
			for name, addr := range addrs {
				if name == busy {
					continue
				}
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("the %s address %s is still held after the failed start: %v", name, addr, err)
					continue
				}
				l.Close()
			}
			if after := inotifyFDs(t); after != before {
				t.Errorf("inotify descriptors %d before the failed start, %d after: a watcher was left open", before, after)
			}
		})
	}
}

// inotifyFDs counts this process's open inotify instances.
func inotifyFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

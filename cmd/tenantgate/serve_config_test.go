package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// configWithBundle is an OPA config whose bundle server refuses
// connections (a closed loopback port).
func configWithBundle(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := filepath.Join(t.TempDir(), "opa.yaml")
	cfg := "services:\n  s:\n    url: http://" + addr + "\nbundles:\n  tg:\n    service: s\n    resource: /b.tar.gz\n" +
		"persistence_directory: " + filepath.Join(t.TempDir(), "p") + "\n"
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeConfigConflicts(t *testing.T) {
	cfg := configWithBundle(t)
	secret := filepath.Join(t.TempDir(), "s")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bundle", "x.tar.gz", "--bundle-insecure-skip-verification"}, `--bundle conflicts with --config`},
		{[]string{"--data", "data"}, `--data conflicts with --config`},
		{[]string{"--bundle-startup-timeout", "0s"}, "must be positive"},
	} {
		args := append([]string{"--config", cfg, "--jwt-hs256-secret-file", secret}, tc.args...)
		err := serve(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := serve([]string{"--bundle-startup-timeout", "1s", "--jwt-hs256-secret-file", secret}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "needs --config") {
		t.Errorf("--bundle-startup-timeout without --config: %v", err)
	}
}

// TestServeStartupTimeout: with no bundle server and nothing persisted,
// serve stays unready, then exits with an error naming the timeout.
func TestServeStartupTimeout(t *testing.T) {
	cfg := configWithBundle(t)
	secret := filepath.Join(t.TempDir(), "s")
	os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef"), 0o600)
	start := time.Now()
	err := serve([]string{"--config", cfg, "--jwt-hs256-secret-file", secret, "--grpc-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--bundle-startup-timeout", "1s", "--shutdown-delay", "0s"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no revision of bundle \"tg\" activated within --bundle-startup-timeout 1s") {
		t.Fatalf("serve: %v, want the startup timeout error", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v to give up after a 1 s timeout", d)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeListenerFlagErrors: bad TLS and decision-log flags stop serve
// before it listens, with an error naming the flag or the file.
func TestServeListenerFlagErrors(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "decisions.log")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"cert without key", []string{"--tls-cert-file", notPEM}, "needed together"},
		{"key without cert", []string{"--tls-key-file", notPEM}, "needed together"},
		{"client CA alone", []string{"--tls-client-ca-file", notPEM}, "client CA file needs"},
		{"bad certificate", []string{"--tls-cert-file", notPEM, "--tls-key-file", notPEM}, notPEM},
		{"decision log in a missing directory", []string{"--decision-log", missing}, missing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// An address that cannot be bound: if a bad flag got past the
			// checks, serve still ends (with another error) instead of serving.
			args := append([]string{"serve", "--data", "../../data", "--policies", "../../policies",
				"--jwt-hs256-secret-file", secret, "--grpc-addr", "unix://", "--log-level", "error"}, tc.args...)
			_, errs, code := runCLI(t, args...)
			if code != 1 || !strings.Contains(errs, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q: want exit 1 and %q", code, errs, tc.wantErr)
			}
		})
	}
}

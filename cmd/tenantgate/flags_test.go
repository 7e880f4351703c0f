package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/decisionlog"
)

// TestServeHelpListsFlags: the decision-log and reflection flags are documented in
// serve -h, with their defaults.
func TestServeHelpListsFlags(t *testing.T) {
	_, errs, code := runCLI(t, "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h: exit %d", code)
	}
	for _, want := range []string{"-grpc-reflection", "-decision-log-max-size int", "(default 104857600)", "-decision-log-max-files int", "(default 3)"} {
		if !strings.Contains(errs, want) {
			t.Errorf("serve -h does not list %q:\n%s", want, errs)
		}
	}
}

// TestDecisionLogOptions: the flags' defaults bound the log; 0 means none
// (no size bound, no rotated file kept); a negative value is refused.
func TestDecisionLogOptions(t *testing.T) {
	tests := []struct {
		args     []string
		maxSize  int64
		maxFiles int
		wantErr  bool
	}{
		{nil, decisionlog.DefaultMaxSize, decisionlog.DefaultMaxFiles, false},
		{[]string{"--decision-log-max-size", "1048576", "--decision-log-max-files", "7"}, 1 << 20, 7, false},
		{[]string{"--decision-log-max-size", "0", "--decision-log-max-files", "0"}, -1, -1, false},
		{[]string{"--decision-log-max-size", "-1"}, 0, 0, true},
		{[]string{"--decision-log-max-files", "-2"}, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			var f decisionLogFlags
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			opts, err := f.options(nil)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "must not be negative") {
					t.Fatalf("error %v, want one saying the value must not be negative", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.MaxSize != tc.maxSize || opts.MaxFiles != tc.maxFiles {
				t.Errorf("MaxSize %d, MaxFiles %d; want %d, %d", opts.MaxSize, opts.MaxFiles, tc.maxSize, tc.maxFiles)
			}
		})
	}
}

// TestServeRefusesNegativeDecisionLogBounds: serve stops at start, naming
// the flag.
func TestServeRefusesNegativeDecisionLogBounds(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, "serve", "--data", "../../data", "--policies", "../../policies", "--jwt-hs256-secret-file", secret,
		"--decision-log", filepath.Join(dir, "d.log"), "--decision-log-max-size=-5")
	if code != 1 || !strings.Contains(errs, "--decision-log-max-size -5") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}

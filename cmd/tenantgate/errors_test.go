package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/buildinfo"
	"github.com/tenantgate/tenantgate/internal/docs"
)

// TestErrorsSayWhatToDo: each mistake a newcomer makes on the command line
// gets one short message that names the flag and the fix, and the exit code
// of a usage error (2) or a failed start (1).
func TestErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := []string{"serve", "--data", "../../data", "--policies", "../../policies", "--jwt-hs256-secret-file", secret}
	with := func(base []string, more ...string) []string { return append(append([]string{}, base...), more...) }
	tests := []struct {
		name     string
		args     []string
		code     int
		want     []string
		maxLines int // 0: no bound
	}{
		{"mistyped flag", []string{"serve", "--dta", "data"}, 2,
			[]string{"flag provided but not defined: -dta", "did you mean --data?", "tenantgate serve -h"}, 3},
		{"mistyped flag of check", []string{"check", "--usr", "bob"}, 2, []string{"did you mean --user?"}, 3},
		{"unknown flag, nothing close", []string{"validate", "--zzzzzzzz"}, 2, []string{"tenantgate validate -h"}, 2},
		{"log level", with(serve, "--log-level", "verbose"), 1, []string{`"verbose"`, "debug, info, warn or error"}, 0},
		{"port without host", with(serve, "--grpc-addr", "9191"), 1, []string{"--grpc-addr", "host:port", "127.0.0.1:9191"}, 0},
		{"socket in a missing directory", with(serve, "--http-addr", "unix://"+filepath.Join(dir, "nope", "t.sock")), 1,
			[]string{"--http-addr", filepath.Join(dir, "nope"), "does not exist"}, 0},
		{"missing data directory", []string{"serve", "--data", filepath.Join(dir, "nodata"), "--policies", "../../policies", "--jwt-hs256-secret-file", secret}, 1,
			[]string{"--data", filepath.Join(dir, "nodata"), "not a directory"}, 0},
		{"bundle without a key", []string{"serve", "--bundle", "x.tar.gz", "--jwt-hs256-secret-file", secret}, 1,
			[]string{"--bundle-verification-key", "--bundle-insecure-skip-verification"}, 0},
		{"bundle key missing", []string{"validate", "--bundle", "x.tar.gz", "--bundle-verification-key", filepath.Join(dir, "k.pem")}, 1,
			[]string{"--bundle-verification-key", "k.pem"}, 0},
		{"check without --user", []string{"check", "--path", "/api/v1/customers/contoso/users"}, 2, []string{"--user is required"}, 1},
		{"check without --path", []string{"check", "--user", "bob@contoso.example"}, 2, []string{"--path is required"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n") + 1; tc.maxLines > 0 && n > tc.maxLines {
				t.Errorf("%d lines on stderr, want at most %d (no full usage):\n%s", n, tc.maxLines, errs)
			}
		})
	}
}

// TestTokenWarnsOnUnknownUser: a token for a user the data does not hold is
// still minted, with a warning that it will be denied unknown_user.
func TestTokenWarnsOnUnknownUser(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		warn bool
	}{{"alice@contoso.example", false}, {"alise@contoso.example", true}} {
		out, errs, code := runCLI(t, "token", "--jwt-hs256-secret-file", secret, "--data", "../../data", "--user", tc.user)
		if code != 0 || strings.Count(out, ".") != 2 {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q: want a token", tc.user, code, out, errs)
		}
		if got := strings.Contains(errs, "not a user in") && strings.Contains(errs, "unknown_user"); got != tc.warn {
			t.Errorf("%s: warning %t, want %t; stderr %q", tc.user, got, tc.warn, errs)
		}
	}
}

// TestOneShotHelpDescribesItself: check and validate read a bundle once, so
// their help must not speak of hot reloading or serving it.
func TestOneShotHelpDescribesItself(t *testing.T) {
	for _, cmd := range []string{"check", "validate"} {
		_, errs, code := runCLI(t, cmd, "-h")
		if code != 0 || !strings.Contains(errs, "--bundle") && !strings.Contains(errs, "-bundle") {
			t.Fatalf("%s -h: exit %d, %s", cmd, code, errs)
		}
		for _, bad := range []string{"hot-reloaded", "serve the bundle"} {
			if strings.Contains(errs, bad) {
				t.Errorf("%s -h says %q:\n%s", cmd, bad, errs)
			}
		}
	}
	_, errs, _ := runCLI(t, "serve", "-h")
	if !strings.Contains(errs, "hot-reloaded") {
		t.Errorf("serve -h no longer says what is hot-reloaded:\n%s", errs)
	}
}

// TestVersion: the binary names the Go and OPA versions it carries.
func TestVersion(t *testing.T) {
	out, errs, code := runCLI(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var info buildinfo.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(info.Go, "go1.") || !strings.HasPrefix(info.OPA, "v1.") || info.Revision == "" || info.Version == "" {
		t.Errorf("version --json = %+v: want go1.x, OPA v1.x and a (possibly unknown) revision", info)
	}
	out, _, _ = runCLI(t, "version")
	if !strings.Contains(out, "opa:") || !strings.Contains(out, info.OPA) {
		t.Errorf("version prints %q, want the OPA version %s", out, info.OPA)
	}
}

// TestHelpTopics: `tenantgate help` lists every topic and each prints; an
// unknown topic is a usage error with a hint.
func TestHelpTopics(t *testing.T) {
	out, _, code := runCLI(t, "help")
	if code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, tp := range docs.Topics {
		if !strings.Contains(out, "  "+tp.Name+" ") {
			t.Errorf("help does not list %q:\n%s", tp.Name, out)
		}
		text, _, code := runCLI(t, "help", tp.Name)
		if code != 0 || !strings.HasPrefix(text, "# ") {
			t.Errorf("help %s: exit %d, %.60q", tp.Name, code, text)
		}
	}
	_, errs, code := runCLI(t, "help", "operation")
	if code != 2 || !strings.Contains(errs, `did you mean "operations"?`) {
		t.Errorf("help operation: exit %d, %q", code, errs)
	}
}

// TestStartFailureSaysCannotStart: bad data at start is "cannot start" and
// exit 1, each data error on its own line, and no talk of a last good
// snapshot (there is none yet).
func TestStartFailureSaysCannotStart(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"customers.yaml", "users.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../data", f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "type: reseller", "type: resellr", 1)
		s = strings.Replace(s, "role: company-administrator", "role: wizard", 1)
		if err := os.WriteFile(filepath.Join(data, f), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(dir, "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	err := run([]string{"serve", "--data", data, "--policies", "../../policies", "--jwt-hs256-secret-file", secret,
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, &stderr, &stderr)
	if err == nil {
		t.Fatal("serve started on bad data")
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	if lines[0] != "cannot start:" || len(lines) != 3 {
		t.Fatalf("error %q: want \"cannot start:\" and one line per data error (2)", msg)
	}
	for i, want := range []string{`customers.yaml:`, `users.yaml:`} {
		if !strings.HasPrefix(lines[i+1], "  ") || !strings.Contains(lines[i+1], want) {
			t.Errorf("line %d %q: want an indented error in %s", i+1, lines[i+1], want)
		}
	}
	if strings.Contains(stderr.String()+msg, "last good") {
		t.Errorf("a failed start speaks of a last good version:\n%s%s", stderr.String(), msg)
	}
}

// TestCheckNotesUnknownUser: check answers unknown_user as the server would,
// and says on stderr that the id is not in the data (a typo, usually).
func TestCheckNotesUnknownUser(t *testing.T) {
	out, errs, code := runCLI(t, "check", "--data", "../../data", "--policies", "../../policies",
		"--user", "alise@contoso.example", "--path", "/api/v1/customers/contoso/users")
	if code != 3 || !strings.Contains(out, "unknown_user") || !strings.Contains(errs, "alise@contoso.example is not a user in the data") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, errs, _ := runCLI(t, "check", "--data", "../../data", "--policies", "../../policies",
		"--user", "alice@contoso.example", "--path", "/api/v1/customers/contoso/users"); errs != "" {
		t.Errorf("a known user got a note: %q", errs)
	}
}

package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command in-process and returns its output and exit code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(args, &out, &errb)
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
	default:
		code = 1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// TestTablesMatchSeeds: `tenantgate tables` prints both seed tables, read
// from the policy, cell for cell. The golden file was checked against
// ../shared/seeds by hand; a policy edit that changes a cell fails here.
func TestTablesMatchSeeds(t *testing.T) {
	want, err := os.ReadFile("testdata/tables.golden")
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "tables", "--policies", "../../policies")
	if code != 0 || out != string(want) {
		t.Fatalf("exit %d, stderr %q, output:\n%s\nwant:\n%s", code, errs, out, want)
	}
	out, _, code = runCLI(t, "tables", "--policies", "../../policies", "--json")
	if code != 0 || !strings.Contains(out, `"module_availability"`) {
		t.Fatalf("json: exit %d %s", code, out)
	}
}

func TestCheck(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--user", "carol@contoso.example", "--path", "/api/v1/customers/contoso/protected-computers"}, 0,
			[]string{"ALLOW 200 allowed", "x-tenantgate-computers: pc-17,pc-18"}},
		{[]string{"--user", "alice@contoso.example", "--path", "/api/v1/customers/northwind/users"}, 3,
			[]string{"DENY 403 outside_tenant", "x-tenantgate-reason: outside_tenant"}},
		{[]string{"--user", "alice@contoso.example", "--method", "DELETE", "--path", "/api/v1/customers/contoso/users/bob%40contoso.example", "--json"}, 0,
			[]string{`"allowed": true`, `"x-tenantgate-customer": "contoso"`}},
		{[]string{"--user", "alice@contoso.example"}, 2, nil},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append([]string{"check", "--data", "../../data", "--policies", "../../policies"}, tc.args...)
			out, errs, code := runCLI(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; %s%s", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	out, _, code := runCLI(t, "validate", "--data", "../../data", "--policies", "../../policies")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("demo data: exit %d %s", code, out)
	}
	dir := t.TempDir()
	bad := "customers:\n  acme:\n    type: distributor\n    colour: red\n  x:\n    type: reseller\n    parent: nobody\n"
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCLI(t, "validate", "--data", dir, "--policies", "")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, w := range []string{"c.yaml:4", `customer "acme"`, `field "colour"`, "c.yaml:7", `"nobody"`} {
		if !strings.Contains(errs, w) {
			t.Errorf("errors lack %q (every error, with file, line, id, field):\n%s", w, errs)
		}
	}
}

func TestTokenRoundTrip(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "token", "--jwt-hs256-secret-file", secret, "--user", "alice@contoso.example")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("exit %d %q %q", code, out, errs)
	}
	if _, _, code := runCLI(t, "token", "--user", "x"); code != 2 {
		t.Errorf("token without secret: exit %d, want 2", code)
	}
}

func TestHelp(t *testing.T) {
	out, _, code := runCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "tenantgate serve") {
		t.Fatalf("help: %d %s", code, out)
	}
	for _, sub := range []string{"serve", "validate", "check", "tables", "token"} {
		_, errs, code := runCLI(t, sub, "-h")
		if code != 0 || !strings.Contains(errs, "Usage: tenantgate "+sub) {
			t.Errorf("%s -h: exit %d %s", sub, code, errs)
		}
	}
	if _, _, code := runCLI(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if _, errs, code := runCLI(t, "serve", "--data", "../../data"); code != 1 || !strings.Contains(errs, "--jwt-hs256-secret-file") {
		t.Errorf("serve without keys: exit %d %s", code, errs)
	}
}

// TestServeRefusesLimitsThatSwitchProtectionOff: a zero or negative timeout
// is "no timeout" to net/http; serve refuses it rather than run unprotected.
func TestServeRefusesLimitsThatSwitchProtectionOff(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--http-read-header-timeout=-1s", "--debounce=0", "--decision-timeout=0", "--grpc-max-concurrent-streams=0", "--http-max-header-bytes=-1"} {
		_, errs, code := runCLI(t, "serve", "--data", "../../data", "--policies", "../../policies", "--jwt-hs256-secret-file", secret, flag)
		if code != 1 || !strings.Contains(errs, "must be positive") {
			t.Errorf("%s: exit %d, %s", flag, code, errs)
		}
	}
}

// TestServeWarnsOnJWKSWithoutAudience: an identity provider's keys sign
// tokens for every application it serves, so serving with them but no
// audience check is called out at start. (The missing certificate then
// stops the start, after the warning.)
func TestServeWarnsOnJWKSWithoutAudience(t *testing.T) {
	stop := []string{"--tls-cert-file", filepath.Join(t.TempDir(), "missing.crt"), "--tls-key-file", filepath.Join(t.TempDir(), "missing.key")}
	const warning = "--jwks-file without --jwt-audience"
	for _, tc := range []struct {
		name string
		args []string
		warn bool
	}{
		{"jwks, no audience", []string{"--jwks-file", "jwks.json"}, true},
		{"jwks and audience", []string{"--jwks-file", "jwks.json", "--jwt-audience", "portal"}, false},
		{"secret, no audience", []string{"--jwt-hs256-secret-file", "s"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"serve", "--data", "../../data", "--policies", "../../policies"}, tc.args...), stop...)
			_, errs, code := runCLI(t, args...)
			if code != 1 || !strings.Contains(errs, "missing.crt") {
				t.Fatalf("exit %d, stderr %s: want the start stopped by the missing certificate", code, errs)
			}
			if got := strings.Contains(errs, warning); got != tc.warn {
				t.Errorf("warned %t, want %t; stderr:\n%s", got, tc.warn, errs)
			}
		})
	}
}

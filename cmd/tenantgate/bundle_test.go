package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
)

// keyFiles writes a fresh RSA key pair as PEM files into dir.
func keyFiles(t *testing.T, dir string) (private, public string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	private, public = filepath.Join(dir, "signing.pem"), filepath.Join(dir, "verification.pem")
	if err := os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return private, public
}

// buildBundle runs `tenantgate bundle build` and returns the revision it
// printed; it fails the test unless the build succeeds.
func buildBundle(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := runCLI(t, append([]string{"bundle", "build"}, args...)...)
	if code != 0 {
		t.Fatalf("bundle build %v: exit %d\n%s%s", args, code, out, errs)
	}
	m := regexp.MustCompile(`: revision (\S+), `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("bundle build printed no revision: %q", out)
	}
	return m[1]
}

// tamper copies the bundle at src with old replaced by new in one file,
// after signing, as an attacker with write access to the bundle path would.
func tamper(t *testing.T, src, entry, old, new string) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	found := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == entry {
			if !bytes.Contains(content, []byte(old)) {
				t.Fatalf("%s does not contain %q", entry, old)
			}
			content, found = bytes.Replace(content, []byte(old), []byte(new), 1), true
		}
		if err := tw.WriteHeader(&tar.Header{Name: h.Name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("%s has no %s", src, entry)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "tampered.tar.gz")
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// testBundles builds the repository's data and policies with `tenantgate
// bundle build`: signed with a fresh key, revision r1 (good); the same with
// a permission changed after signing (tampered); never signed (unsigned).
// wrongPub is the public key of another pair.
func testBundles(t *testing.T) (good, tampered, unsigned, pub, wrongPub string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub := keyFiles(t, dir)
	_, wrongPub = keyFiles(t, t.TempDir())
	good, unsigned = filepath.Join(dir, "good.tar.gz"), filepath.Join(dir, "unsigned.tar.gz")
	buildBundle(t, "--data", "../../data", "--policies", "../../policies", "--signing-key", priv, "--revision", "r1", "-o", good)
	buildBundle(t, "--data", "../../data", "--policies", "../../policies", "-o", unsigned)
	// Changed after signing: company-users get full access to configuration.
	tampered = tamper(t, good, "policies/tables.rego",
		`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "none"`,
		`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "full"`)
	return good, tampered, unsigned, pub, wrongPub
}

func TestBundleFlags(t *testing.T) {
	good, tampered, unsigned, pub, wrongPub := testBundles(t)
	cases := []struct {
		name        string
		args        []string
		code        int
		stdout      string
		stderr      string
		notInOutput string
	}{
		{"validate a signed bundle", []string{"validate", "--bundle", good, "--bundle-verification-key", pub}, 0,
			good + ": ok (revision r1, signature verified, 7 customers, 10 users, 2 data files, 2 modules)", "", ""},
		{"validate with the wrong key", []string{"validate", "--bundle", good, "--bundle-verification-key", wrongPub}, 1,
			"", "bundle " + good + ": signature verification failed", "ok ("},
		{"validate a tampered bundle", []string{"validate", "--bundle", tampered, "--bundle-verification-key", pub}, 1,
			"", "bundle " + tampered + ": signature verification failed: policies/tables.rego: digest mismatch", "ok ("},
		{"validate an unsigned bundle", []string{"validate", "--bundle", unsigned, "--bundle-verification-key", pub}, 1,
			"", "signature verification failed: bundle missing .signatures.json file", "ok ("},
		{"no verification key", []string{"validate", "--bundle", good}, 1,
			"", "needs --bundle-verification-key", "ok ("},
		{"verification skipped on request", []string{"validate", "--bundle", unsigned, "--bundle-insecure-skip-verification"}, 0,
			"signature NOT verified", "bundle signature verification is OFF", ""},
		{"check from a bundle", []string{"check", "--bundle", good, "--bundle-verification-key", pub,
			"--user", "erin@contoso.example", "--method", "PUT", "--path", "/api/v1/customers/contoso/company-info"}, 3,
			"DENY 403 role_forbids", "", ""},
		{"check from a tampered bundle", []string{"check", "--bundle", tampered, "--bundle-verification-key", pub,
			"--user", "erin@contoso.example", "--method", "PUT", "--path", "/api/v1/customers/contoso/company-info"}, 1,
			"", "signature verification failed", "ALLOW"},
		{"bundle and data", []string{"serve", "--bundle", good, "--bundle-verification-key", pub, "--data", "../../data", "--jwt-hs256-secret-file", pub}, 1,
			"", "give either --bundle or --data/--policies, not both", ""},
		{"bundle and policies", []string{"validate", "--bundle", good, "--bundle-verification-key", pub, "--policies", "../../policies"}, 1,
			"", "give either --bundle or --data/--policies, not both", ""},
		{"a bundle flag without a bundle", []string{"serve", "--bundle-verification-key", pub, "--jwt-hs256-secret-file", pub}, 1,
			"", "--bundle-verification-key needs --bundle", ""},
		{"skip without a bundle", []string{"check", "--bundle-insecure-skip-verification", "--user", "a", "--path", "/"}, 1,
			"", "--bundle-insecure-skip-verification needs --bundle", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout to contain %q and stderr %q",
					code, tc.code, out, errs, tc.stdout, tc.stderr)
			}
			if tc.notInOutput != "" && strings.Contains(out, tc.notInOutput) {
				t.Errorf("stdout %q contains %q", out, tc.notInOutput)
			}
		})
	}
}

// TestBundleBuildRevision: the default revision is the content hash: the
// same data and policies give the same one (whatever key signs them), one
// byte changed in a data file gives another, --revision overrides it, and
// validate reads the revision build printed.
func TestBundleBuildRevision(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keyFiles(t, dir)
	build := func(data string, extra ...string) (path, revision string) {
		t.Helper()
		path = filepath.Join(t.TempDir(), "b.tar.gz")
		args := append([]string{"--data", data, "--policies", "../../policies", "-o", path}, extra...)
		return path, buildBundle(t, args...)
	}
	path, first := build("../../data", "--signing-key", priv)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(first) {
		t.Errorf("default revision %q, want sha256:<16 hex digits>", first)
	}
	if out, errs, code := runCLI(t, "validate", "--bundle", path, "--bundle-verification-key", pub); code != 0 || !strings.Contains(out, "(revision "+first+", signature verified") {
		t.Errorf("validate: exit %d %s%s", code, out, errs)
	}
	if _, again := build("../../data", "--signing-key", priv); again != first {
		t.Errorf("the same content built again: revision %s, want %s", again, first)
	}
	if _, unsigned := build("../../data"); unsigned != first {
		t.Errorf("the same content unsigned: revision %s, want %s (the signature is not content)", unsigned, first)
	}

	edited := t.TempDir()
	for _, name := range []string{"customers.yaml", "users.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../data", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "customers.yaml" {
			const old = "name: ACME Distribution"
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("data/customers.yaml no longer has %q", old)
			}
			b = bytes.Replace(b, []byte(old), []byte("name: ACME Distributiom"), 1)
		}
		if err := os.WriteFile(filepath.Join(edited, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, changed := build(edited, "--signing-key", priv); changed == first {
		t.Errorf("one byte changed in a data file: the revision stayed %s", first)
	}

	path, given := build("../../data", "--signing-key", priv, "--revision", "2024.06-rc1")
	if given != "2024.06-rc1" {
		t.Errorf("--revision 2024.06-rc1: printed %s", given)
	}
	if out, _, _ := runCLI(t, "validate", "--bundle", path, "--bundle-verification-key", pub); !strings.Contains(out, "(revision 2024.06-rc1,") {
		t.Errorf("validate: %s", out)
	}
}

func TestBundleBuildErrors(t *testing.T) {
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "users.yaml"), []byte("users:\n  u@x:\n    customer: nowhere\n    role: company-user\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", []string{"bundle"}, 2, "Usage: tenantgate bundle <command>"},
		{"unknown command", []string{"bundle", "sign"}, 2, `unknown command "sign"`},
		{"no output", []string{"bundle", "build"}, 2, "-o FILE is required"},
		{"invalid data names the file and line", []string{"bundle", "build", "--data", bad, "-o", out}, 1,
			filepath.Join(bad, "users.yaml") + `:3: user "u@x": field "customer"`},
		{"algorithm without a key", []string{"bundle", "build", "--signing-alg", "ES256", "-o", out}, 1, "without a signing key"},
		{"missing key", []string{"bundle", "build", "--signing-key", filepath.Join(bad, "nope.pem"), "-o", out}, 1, "nope.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if len(args) > 2 {
				args = append(args, "--policies", "../../policies")
				if !strings.Contains(strings.Join(args, " "), "--data") {
					args = append(args, "--data", "../../data")
				}
			}
			_, errs, code := runCLI(t, args...)
			if code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d, stderr %q: want exit %d and %q", code, errs, tt.code, tt.stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a failed build wrote the bundle")
			}
		})
	}
}

func TestBundleHelp(t *testing.T) {
	_, errs, code := runCLI(t, "bundle", "-h")
	if code != 0 || !strings.Contains(errs, "build") || !strings.Contains(errs, "tenantgate bundle <command> -h") {
		t.Errorf("bundle -h: exit %d %s", code, errs)
	}
	_, errs, code = runCLI(t, "bundle", "build", "-h")
	if code != 0 || !strings.Contains(errs, "Usage: tenantgate bundle build") {
		t.Errorf("bundle build -h: exit %d %s", code, errs)
	}
	for _, f := range []string{"-data", "-policies", "-signing-key", "-signing-alg", "-revision", "-o string", "content hash"} {
		if !strings.Contains(errs, f) {
			t.Errorf("bundle build -h does not describe %s:\n%s", f, errs)
		}
	}
	if out, _, _ := runCLI(t, "--help"); !strings.Contains(out, "tenantgate bundle") {
		t.Errorf("tenantgate --help does not list bundle:\n%s", out)
	}
}

// TestServeBuiltBundle runs `tenantgate serve --bundle` (in process, on Unix
// sockets) on what `bundle build` made: with the verification key it
// serves and decides; with the wrong key, or an unsigned bundle and a key,
// it does not start; an unsigned bundle serves only with
// --bundle-insecure-skip-verification.
func TestServeBuiltBundle(t *testing.T) {
	good, tampered, unsigned, pub, wrongPub := testBundles(t)
	secret := filepath.Join(t.TempDir(), "hs256.secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		serves bool
		stderr string
	}{
		{"signed, verification key", []string{"--bundle", good, "--bundle-verification-key", pub}, true, "revision=r1 verified=true"},
		{"signed, wrong key", []string{"--bundle", good, "--bundle-verification-key", wrongPub}, false, "signature verification failed"},
		{"tampered", []string{"--bundle", tampered, "--bundle-verification-key", pub}, false, "policies/tables.rego: digest mismatch"},
		{"unsigned, verification key", []string{"--bundle", unsigned, "--bundle-verification-key", pub}, false, "bundle missing .signatures.json file"},
		{"unsigned, no key", []string{"--bundle", unsigned}, false, "needs --bundle-verification-key"},
		{"unsigned, verification skipped", []string{"--bundle", unsigned, "--bundle-insecure-skip-verification"}, true, "verified=false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "http.sock")
			args := append([]string{"serve", "--jwt-hs256-secret-file", secret, "--shutdown-delay", "1ms",
				"--grpc-addr", "unix://" + filepath.Join(filepath.Dir(sock), "grpc.sock"), "--http-addr", "unix://" + sock}, tt.args...)
			var stdout, stderr bytes.Buffer
			done := make(chan error, 1)
			go func() { done <- run(args, &stdout, &stderr) }()
			client := unixClient(sock)
			decide := func(user, method, path string) int {
				t.Helper()
				tok, err := identity.SignHS256(secret, user, "", "", time.Hour, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				req, _ := http.NewRequest("GET", "http://tenantgate/authz", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("X-Forwarded-Method", method)
				req.Header.Set("X-Forwarded-Uri", path)
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}

			if exited, err := waitServing(t, client, done); exited {
				// stderr is only read once run has returned.
				if tt.serves {
					t.Fatalf("serve exited: %v\n%s", err, stderr.String())
				}
				if err == nil || !strings.Contains(stderr.String()+err.Error(), tt.stderr) {
					t.Fatalf("serve: %v, stderr:\n%s\nwant an error containing %q", err, stderr.String(), tt.stderr)
				}
				return
			}
			if !tt.serves {
				t.Error("serve started")
			}
			if got := decide("alice@contoso.example", "GET", "/api/v1/customers/contoso/users"); got != http.StatusOK {
				t.Errorf("alice reading her users: %d, want 200", got)
			}
			if got := decide("erin@contoso.example", "PUT", "/api/v1/customers/contoso/company-info"); got != http.StatusForbidden {
				t.Errorf("erin writing configuration: %d, want 403", got)
			}
			// /v1/status says what runs: the build, and the evaluator in use.
			if resp, err := client.Get("http://tenantgate/v1/status"); err != nil {
				t.Error(err)
			} else {
				var st struct {
					Build     map[string]string `json:"build"`
					Evaluator struct {
						InUse string `json:"in_use"`
					}
					BundleFile struct {
						File     string `json:"file"`
						Revision string `json:"manifest_revision"`
					} `json:"bundle_file"`
				}
				err := json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				if err != nil || !strings.HasPrefix(st.Build["go"], "go1.") || st.Build["opa"] == "" || st.Evaluator.InUse == "" {
					t.Errorf("/v1/status: %v %+v, want the build (go, opa) and the evaluator in use", err, st)
				}
				// The bundle's own revision and path, beside the snapshot's digest.
				if (st.BundleFile.Revision != "r1" && !strings.HasPrefix(st.BundleFile.Revision, "sha256:")) || !strings.HasSuffix(st.BundleFile.File, ".tar.gz") {
					t.Errorf("/v1/status bundle_file %+v, want the manifest revision (r1, or a content hash) and the bundle's path", st.BundleFile)
				}
			}
			// serve stops on SIGTERM; its signal handler is registered
			// before it listens, so the signal cannot end the test binary.
			if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("serve did not stop on SIGTERM")
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("serve log lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

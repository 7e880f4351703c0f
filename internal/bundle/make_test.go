package bundle_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/bundle"
)

// TestMakeBundle runs the real `make bundle` (keygen, tenantgate bundle
// build --signing-key, validate --bundle, rename) into a temp dir, serves
// what it built, and checks a tampered copy is refused.
func TestMakeBundle(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to test the bundle target: %v", err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out", "tenantgate.tar.gz")
	key, pub := filepath.Join(dir, "dev", "signing.pem"), filepath.Join(dir, "dev", "verification.pem")
	cmd := exec.Command("make", "--no-print-directory", "bundle", "BUNDLE="+out, "BUNDLE_KEY="+key, "BUNDLE_PUB="+pub,
		"BIN="+filepath.Join(dir, "bin", "tenantgate"))
	cmd.Dir = "../.."
	// The outer make's flags (make test) are not this make's business.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make bundle: %v\n%s", err, output)
	}
	if !strings.Contains(string(output), "signature verified") {
		t.Errorf("make bundle did not check the bundle it built:\n%s", output)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("signing key: %v, %v; want a 0600 file", st, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "out", "*")); len(m) != 1 {
		t.Errorf("output dir holds %v, want only the bundle (no temp file left)", m)
	}

	// The manifest: the root, and the content hash as the revision.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := opabundle.NewCustomReader(opabundle.NewTarballLoaderWithBaseURL(f, "")).WithSkipBundleVerification(true).Read()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if raw.Manifest.Roots == nil || !slices.Equal(*raw.Manifest.Roots, []string{"tenantgate"}) ||
		!regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(raw.Manifest.Revision) {
		t.Errorf("manifest %+v: want roots [tenantgate] and a content-hash revision", raw.Manifest)
	}
	if !strings.Contains(string(output), "(revision "+raw.Manifest.Revision+", signature verified") {
		t.Errorf("make bundle did not report the revision %s:\n%s", raw.Manifest.Revision, output)
	}

	src := newSource(t, bundle.Options{Path: out, VerificationKey: pub})
	e, check := testEngine(t, src)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := check("alice@contoso.example", "GET", "/api/v1/customers/contoso/users"); !r.Allowed {
		t.Errorf("alice reading her users: %d %s", r.Status, r.Reason)
	}
	if r := check("erin@contoso.example", "PUT", "/api/v1/customers/contoso/company-info"); r.Reason != "role_forbids" {
		t.Errorf("erin writing configuration: %d %s, want role_forbids", r.Status, r.Reason)
	}

	// The same bundle with erin made a company-owner is refused.
	tampered := rewrite(t, out, replaceIn(t, "data.json",
		`"erin@contoso.example":{"customer":"contoso","locations":["hq","branch-1"],"role":"company-user"}`,
		`"erin@contoso.example":{"customer":"contoso","locations":["hq","branch-1"],"role":"company-owner"}`), nil)
	_, err = newSource(t, bundle.Options{Path: tampered, VerificationKey: pub}).Read(context.Background())
	if err == nil || !strings.Contains(err.Error(), "signature verification failed: data.json: digest mismatch") {
		t.Errorf("tampered bundle: %v", err)
	}
}

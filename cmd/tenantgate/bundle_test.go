package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/bundle"
)

// testBundles builds the repository's data and policies into a bundle
// signed with a fresh key (good), the same bundle with a permission changed
// after signing (tampered), and one never signed (unsigned).
func testBundles(t *testing.T) (good, tampered, unsigned, pub string) {
	t.Helper()
	dir := t.TempDir()
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
	pub = filepath.Join(dir, "verification.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(dir, "stage")
	if err := bundle.Stage(context.Background(), bundle.StageOptions{Data: "../../data", Policies: "../../policies", Out: stage, Revision: "r1"}); err != nil {
		t.Fatal(err)
	}
	write := func(name string, sign bool, edit func(*opabundle.Bundle)) string {
		b, err := opabundle.NewCustomReader(opabundle.NewDirectoryLoader(stage)).WithSkipBundleVerification(true).Read()
		if err != nil {
			t.Fatal(err)
		}
		if sign {
			sc := opabundle.NewSigningConfig(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "RS256", "")
			if err := b.GenerateSignature(sc, bundle.DefaultKeyID, true); err != nil {
				t.Fatal(err)
			}
		}
		if edit != nil {
			edit(&b)
		}
		var buf bytes.Buffer
		if err := opabundle.NewWriter(&buf).UseModulePath(true).Write(b); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good = write("good.tar.gz", true, nil)
	// Changed after signing: company-users get full access to configuration.
	tampered = write("tampered.tar.gz", true, func(b *opabundle.Bundle) {
		for i, m := range b.Modules {
			if strings.HasSuffix(m.Path, "tables.rego") {
				old := `"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "none"`
				if !bytes.Contains(m.Raw, []byte(old)) {
					t.Fatalf("tables.rego no longer has %q", old)
				}
				b.Modules[i].Raw = bytes.Replace(m.Raw, []byte(old),
					[]byte(`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "full"`), 1)
			}
		}
	})
	unsigned = write("unsigned.tar.gz", false, nil)
	return good, tampered, unsigned, pub
}

func TestBundleFlags(t *testing.T) {
	good, tampered, unsigned, pub := testBundles(t)
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

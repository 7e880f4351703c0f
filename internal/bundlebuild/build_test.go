package bundlebuild

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// keyPair is a private and a public key as PEM files.
type keyPair struct{ private, public string }

// pemKeys writes k's PKCS#8 private key and PKIX public key to dir.
func pemKeys(t testing.TB, dir string, k crypto.Signer) keyPair {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{
		private: writeFile(t, filepath.Join(dir, "signing.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))),
		public:  writeFile(t, filepath.Join(dir, "verification.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))),
	}
}

// rsaKeys are two RSA keys, made once per test binary (slow under -race).
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var out [2]*rsa.PrivateKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
})

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyDir copies the regular files of src into a new temp dir.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dst, e.Name()), string(b))
		}
	}
	return dst
}

// build runs Build with the repository's data and policies unless opts
// names others, into a temp file.
func build(t *testing.T, opts Options) (string, *Result) {
	t.Helper()
	if opts.Data == "" {
		opts.Data = "../../data"
	}
	if opts.Policies == "" {
		opts.Policies = "../../policies"
	}
	if opts.Out == "" {
		opts.Out = filepath.Join(t.TempDir(), "tenantgate.tar.gz")
	}
	r, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return opts.Out, r
}

// read reads a bundle as serve does, verified with the public key in pub,
// or unverified when pub is "".
func read(t *testing.T, path, pub, alg string) (*bundle.Contents, error) {
	t.Helper()
	s, err := bundle.New(bundle.Options{Path: path, VerificationKey: pub, Algorithm: alg,
		InsecureSkipVerification: pub == "", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s.Read(context.Background())
}

func TestBuildLayout(t *testing.T) {
	path, r := build(t, Options{})
	tgz, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := tarFiles(tgz)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var manifest []byte
	for _, f := range files {
		names = append(names, f.name)
		if f.name == ".manifest" {
			manifest = f.content
		}
	}
	slices.Sort(names)
	if want := []string{".manifest", "data.json", "policies/authz.rego", "policies/tables.rego"}; !slices.Equal(names, want) {
		t.Errorf("bundle files %v, want %v (unsigned: no .signatures.json)", names, want)
	}
	var m struct {
		Revision    string   `json:"revision"`
		Roots       []string `json:"roots"`
		RegoVersion int      `json:"rego_version"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.Revision != r.Revision || !regexp.MustCompile(`^sha256:[0-9a-f]{16}$`).MatchString(m.Revision) ||
		!slices.Equal(m.Roots, []string{"tenantgate"}) || m.RegoVersion != 1 {
		t.Errorf("manifest %+v (result revision %q)", m, r.Revision)
	}
	if r.Signed || r.Customers != 7 || r.Users != 10 || r.DataFiles != 2 || r.Modules != 2 || r.Bytes != len(tgz) {
		t.Errorf("result %+v", r)
	}
	c, err := read(t, path, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != r.Revision || len(c.Data.Customers) != 7 || len(c.Data.Users) != 10 || len(c.Policies) != 2 {
		t.Errorf("read back: revision %q, %d customers, %d users, %d policies", c.Revision, len(c.Data.Customers), len(c.Data.Users), len(c.Policies))
	}
}

// TestBuildKeepsScalarsAsWritten builds data whose ids a generic YAML to
// JSON converter would change (numbers, dates, floats), and checks the
// bundle serves exactly what the directory validated.
func TestBuildKeepsScalarsAsWritten(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "customers.yml"), `
customers:
  0123:                      # an int to YAML; the id "0123" to tenantgate
    type: distributor
    name: 1e3
  2024-01-01:                # a date to YAML
    type: end-customer
    parent: 0123
    locations: [1.50, hq, 0x1F]
`)
	writeFile(t, filepath.Join(data, "users.yaml"), `
users:
  u@x:
    customer: 2024-01-01
    role: &r company-user
    locations: [1.50]
  v@x:
    customer: "2024-01-01"
    role: *r
    disabled: TRUE
`)
	want, err := tenant.LoadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	if c := want.Customers["2024-01-01"]; c == nil || !slices.Equal(c.Locations, []string{"1.50", "hq", "0x1F"}) {
		t.Fatalf("the directory itself reads %+v", c)
	}
	keys := pemKeys(t, t.TempDir(), rsaKeys()[0])
	path, _ := build(t, Options{Data: data, SigningKey: keys.private})
	c, err := read(t, path, keys.public, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sameData(want, c.Data); err != nil {
		t.Error(err)
	}
	if c.Data.Customers["0123"] == nil || c.Data.Customers["0123"].Name != "1e3" {
		t.Errorf("customer 0123: %+v", c.Data.Customers["0123"])
	}
	if u := c.Data.Users["v@x"]; u == nil || !u.Disabled || u.Role != "company-user" {
		t.Errorf("user v@x: %+v", u)
	}
	if !slices.Equal(c.Data.Files, []string{"customers.yml", "users.yaml"}) {
		t.Errorf("files %v: want the original names", c.Data.Files)
	}
}

// TestBuildSigned: a bundle built with each kind of key verifies with its
// public key as serve verifies it, and not with another key.
func TestBuildSigned(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other := pemKeys(t, t.TempDir(), rsaKeys()[1])
	tests := []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"RS256 (default)", rsaKeys()[0], ""},
		{"PS256", rsaKeys()[0], "PS256"},
		{"ES256", ec, "ES256"},
		{"EdDSA", ed, "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := pemKeys(t, t.TempDir(), tt.key)
			path, r := build(t, Options{SigningKey: keys.private, SigningAlg: tt.alg})
			if !r.Signed {
				t.Error("result says unsigned")
			}
			c, err := read(t, path, keys.public, tt.alg)
			if err != nil {
				t.Fatalf("refused with its own key: %v", err)
			}
			if !c.Verified || c.Revision != r.Revision {
				t.Errorf("verified %v, revision %q (built %q)", c.Verified, c.Revision, r.Revision)
			}
			if tt.alg == "" {
				if _, err := read(t, path, other.public, ""); err == nil || !strings.Contains(err.Error(), "signature verification failed") {
					t.Errorf("another key: %v, want a signature verification failure", err)
				}
			}
		})
	}
}

// TestContentRevision: the default revision is a function of the content
// only: the same files give the same one (wherever they are, whatever key
// signs them), one byte changed anywhere gives another, and --revision
// overrides it.
func TestContentRevision(t *testing.T) {
	k1 := pemKeys(t, t.TempDir(), rsaKeys()[0])
	k2 := pemKeys(t, t.TempDir(), rsaKeys()[1])
	revision := func(opts Options) string {
		t.Helper()
		_, r := build(t, opts)
		return r.Revision
	}
	base := revision(Options{SigningKey: k1.private})

	tests := []struct {
		name string
		opts Options
		same bool
	}{
		{"built again", Options{SigningKey: k1.private}, true},
		{"a copy of the same files", Options{Data: copyDir(t, "../../data"), Policies: copyDir(t, "../../policies")}, true},
		{"signed with another key", Options{SigningKey: k2.private}, true},
		{"unsigned", Options{}, true},
		{"one byte changed in a data file", Options{Data: editedCopy(t, "../../data", "customers.yaml", "name: ACME Distribution", "name: ACME Distributiom")}, false},
		// The revision follows the data as served (its JSON form), not
		// the YAML's comments or layout.
		{"a comment added to a data file", Options{Data: editedCopy(t, "../../data", "users.yaml", "users:", "# a comment\nusers:")}, true},
		{"a data file renamed", Options{Data: renamedCopy(t, "../../data", "users.yaml", "users.yml")}, false},
		{"one byte changed in a policy", Options{Policies: editedCopy(t, "../../policies", "tables.rego", "# METADATA", "# METADATa")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := revision(tt.opts)
			if (got == base) != tt.same {
				t.Errorf("revision %s, base %s: want same %v", got, base, tt.same)
			}
		})
	}

	t.Run("given revision overrides", func(t *testing.T) {
		path, r := build(t, Options{SigningKey: k1.private, Revision: "v1.2.3"})
		c, err := read(t, path, k1.public, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.Revision != "v1.2.3" || c.Revision != "v1.2.3" {
			t.Errorf("result %q, manifest %q; want v1.2.3", r.Revision, c.Revision)
		}
	})
}

// editedCopy copies dir with old replaced by new (once) in file.
func editedCopy(t *testing.T, dir, file, old, new string) string {
	t.Helper()
	out := copyDir(t, dir)
	p := filepath.Join(out, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", p, old)
	}
	writeFile(t, p, strings.Replace(string(b), old, new, 1))
	return out
}

// renamedCopy copies dir with file renamed to name.
func renamedCopy(t *testing.T, dir, file, name string) string {
	t.Helper()
	out := copyDir(t, dir)
	if err := os.Rename(filepath.Join(out, file), filepath.Join(out, name)); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuildErrors(t *testing.T) {
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "users.yaml"), "users:\n  u@x:\n    customer: nowhere\n    role: company-user\n")
	badPolicies := t.TempDir()
	writeFile(t, filepath.Join(badPolicies, "x.rego"), "package tenantgate.x\n\nthis is not rego\n")
	keys := pemKeys(t, t.TempDir(), rsaKeys()[0])
	missingKey := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"invalid data names file and line", Options{Data: bad}, filepath.Join(bad, "users.yaml") + `:3: user "u@x": field "customer"`},
		{"policies that do not compile", Options{Policies: badPolicies}, "x.rego:3"},
		{"missing data dir", Options{Data: filepath.Join(bad, "nope")}, filepath.Join(bad, "nope")},
		{"missing signing key", Options{SigningKey: missingKey}, "signing key: open " + missingKey},
		{"a public key to sign with", Options{SigningKey: keys.public}, `signing key ` + keys.public + `: PEM block "PUBLIC KEY": want a private key`},
		{"not PEM", Options{SigningKey: writeFile(t, filepath.Join(t.TempDir(), "junk.pem"), "junk")}, "no PEM block"},
		{"HMAC", Options{SigningKey: keys.private, SigningAlg: "HS256"}, `bundle build: signature algorithm "HS256": want one of RS256`},
		{"an RSA key for ES256", Options{SigningKey: keys.private, SigningAlg: "ES256"},
			"signing key " + keys.private + ": an RSA key cannot sign ES256: sign with RS256, RS384, RS512, PS256, PS384 or PS512"},
		{"an algorithm without a key", Options{SigningAlg: "RS256"}, "without a signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Data == "" {
				tt.opts.Data = "../../data"
			}
			if tt.opts.Policies == "" {
				tt.opts.Policies = "../../policies"
			}
			// What is at the output path stays as it was.
			tt.opts.Out = writeFile(t, filepath.Join(t.TempDir(), "b.tar.gz"), "the last good bundle")
			_, err := Build(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: %v, want an error containing %q", err, tt.want)
			}
			if b, _ := os.ReadFile(tt.opts.Out); string(b) != "the last good bundle" {
				t.Errorf("the output file was changed to %q", b)
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(tt.opts.Out), "*")); len(m) != 1 {
				t.Errorf("output dir holds %v: a temp file was left", m)
			}
		})
	}
	if _, err := Build(context.Background(), Options{Data: "../../data", Policies: "../../policies"}); err == nil || !strings.Contains(err.Error(), "all required") {
		t.Errorf("no output: %v", err)
	}
}

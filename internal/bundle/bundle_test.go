package bundle_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/bundle"
)

func TestSignedBundleServes(t *testing.T) {
	path := signedRepoBundle(t)
	src := newSource(t, bundle.Options{Path: path, VerificationKey: publicKeyFile(t, signingKey())})
	e, check := testEngine(t, src)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, method, path string
		status             int
		reason             string
	}{
		{"alice@contoso.example", "GET", "/api/v1/customers/contoso/users", 200, "allowed"},
		{"alice@contoso.example", "GET", "/api/v1/customers/northwind/users", 403, "outside_tenant"},
		{"bob@contoso.example", "GET", "/api/v1/customers/contoso/locations/branch-1/vbr-jobs", 403, "location_forbidden"},
		{"frank@fabrikam.example", "GET", "/api/v1/customers/fabrikam/users", 403, "customer_disabled"},
		{"nobody@contoso.example", "GET", "/api/v1/customers/contoso/users", 403, "unknown_user"},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.path, func(t *testing.T) {
			r := check(tt.user, tt.method, tt.path)
			if r.Status != tt.status || r.Reason != tt.reason {
				t.Errorf("got %d %s, want %d %s", r.Status, r.Reason, tt.status, tt.reason)
			}
		})
	}

	st := e.Status()
	for _, f := range []string{"customers.yaml", "users.yaml", "bundle:/policies/authz.rego", "bundle:/policies/tables.rego"} {
		if !slices.Contains(st.Files, f) {
			t.Errorf("status files %v: missing %s", st.Files, f)
		}
	}
	for _, f := range st.Files {
		if strings.HasSuffix(f, "_test.rego") {
			t.Errorf("status files %v: a test module is served", st.Files)
		}
	}
}

func TestReadContents(t *testing.T) {
	k := signingKey()
	b := assembled(t, "")
	b.Manifest.Revision = "rev-42"
	// A test module in a bundle is left out, as policy.ReadDir leaves it out.
	b.Modules = append(b.Modules, opabundle.ModuleFile{
		Path: "/policies/authz_test.rego", URL: "/policies/authz_test.rego",
		Raw: []byte("package tenantgate.authz_test\n\ntest_x if true\n"),
	})
	path := writeBundle(t, filepath.Join(t.TempDir(), "b.tar.gz"), b, &k, "some-other-kid")
	// The key id pins the key: the kid the bundle names does not choose it.
	c, err := newSource(t, bundle.Options{Path: path, VerificationKey: publicKeyFile(t, k)}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != "rev-42" || !c.Verified {
		t.Errorf("revision %q verified %v, want rev-42 true", c.Revision, c.Verified)
	}
	var names []string
	for _, p := range c.Policies {
		names = append(names, p.Name)
	}
	if want := []string{"bundle:/policies/authz.rego", "bundle:/policies/tables.rego"}; !slices.Equal(names, want) {
		t.Errorf("policies %v, want %v", names, want)
	}
	if len(c.Data.Customers) != 7 || len(c.Data.Users) != 10 {
		t.Errorf("%d customers, %d users; want the demo's 7 and 10", len(c.Data.Customers), len(c.Data.Users))
	}
	if u := c.Data.Users["bob@contoso.example"]; u == nil || !slices.Equal(u.Locations, []string{"hq"}) || u.File != "users.yaml" {
		t.Errorf("bob: %+v", u)
	}
}

func TestBadBundlesRefused(t *testing.T) {
	good := signedRepoBundle(t)
	pub := publicKeyFile(t, signingKey())
	other := otherKey()
	unsigned := writeBundle(t, filepath.Join(t.TempDir(), "unsigned.tar.gz"), assembled(t, ""), nil, "")
	wrongKey := writeBundle(t, filepath.Join(t.TempDir(), "wrong.tar.gz"), assembled(t, ""), &other, bundle.DefaultKeyID)
	notGzip := writeFile(t, filepath.Join(t.TempDir(), "junk.tar.gz"), "this is not a bundle")

	tests := []struct {
		name   string
		bundle string
		want   []string // substrings of the error
		sig    bool     // the error says the signature is the problem
	}{
		{"permission cell changed in tables.rego",
			rewrite(t, good, replaceIn(t, "policies/tables.rego",
				`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "none"`,
				`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "full"`), nil),
			[]string{"policies/tables.rego: digest mismatch"}, true},
		{"a user's role changed in data.json",
			rewrite(t, good, replaceIn(t, "data.json",
				`"customer":"contoso","role":"invoice-auditor"`, `"customer":"contoso","role":"company-owner"`), nil),
			[]string{"data.json: digest mismatch"}, true},
		{"revision changed in the manifest",
			rewrite(t, good, replaceIn(t, ".manifest", `"revision":"staged"`, `"revision":"forged"`), nil),
			[]string{".manifest: digest mismatch"}, true},
		{"a policy added",
			rewrite(t, good, nil, map[string]string{"/policies/evil.rego": "package tenantgate.evil\n\nx := 1\n"}),
			[]string{"policies/evil.rego not included in bundle signature"}, true},
		{"a policy removed",
			rewrite(t, good, func(name string, c []byte) ([]byte, bool) { return c, name != "policies/tables.rego" }, nil),
			[]string{"policies/tables.rego", "not found in the target bundle"}, true},
		{"signatures removed",
			rewrite(t, good, func(name string, c []byte) ([]byte, bool) { return c, name != ".signatures.json" }, nil),
			[]string{"bundle missing .signatures.json file"}, true},
		{"never signed", unsigned, []string{"bundle missing .signatures.json file"}, true},
		{"signed with another key", wrongKey, []string{"failed to verify JWT signature"}, true},
		{"not a tar.gz", notGzip, []string{"bundle read failed"}, false},
		{"no such file", filepath.Join(t.TempDir(), "missing.tar.gz"), []string{"no such file"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSource(t, bundle.Options{Path: tt.bundle, VerificationKey: pub}).Read(context.Background())
			if err == nil {
				t.Fatal("served")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "bundle "+tt.bundle+": ") {
				t.Errorf("error %q does not start with the bundle path", msg)
			}
			if got := strings.Contains(msg, "signature verification failed: "); got != tt.sig {
				t.Errorf("error %q: says signature verification failed: %v, want %v", msg, got, tt.sig)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestBadBundleKeepsLastGoodSnapshot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenantgate.tar.gz")
	good := signedRepoBundle(t)
	copyFile(t, good, path)
	e, check := testEngine(t, newSource(t, bundle.Options{Path: path, VerificationKey: publicKeyFile(t, signingKey())}))
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := e.Snapshot()

	// The forged bundle gives invoice-auditors full access to configuration.
	forged := rewrite(t, good, replaceIn(t, "policies/tables.rego",
		`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "none", "subtenant-user": "none", "invoice-auditor": "none"}`,
		`"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "none", "subtenant-user": "none", "invoice-auditor": "full"}`), nil)
	copyFile(t, forged, path)
	err := e.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bundle "+path+": signature verification failed: ") {
		t.Fatalf("reload error %v, want a signature verification failure", err)
	}
	if e.Snapshot() != before {
		t.Error("the snapshot changed")
	}
	if st := e.Status(); !strings.Contains(st.LastError, "signature verification failed") || !st.Ready {
		t.Errorf("status %+v", st)
	}
	if r := check("ivan@contoso.example", "PUT", "/api/v1/customers/contoso/company-info"); r.Allowed || r.Reason != "role_forbids" {
		t.Errorf("ivan writing configuration: %d %s, want 403 role_forbids", r.Status, r.Reason)
	}

	// The forgery is real: served without verification, it lets ivan in.
	e, check = testEngine(t, newSource(t, bundle.Options{Path: path, InsecureSkipVerification: true}))
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := check("ivan@contoso.example", "PUT", "/api/v1/customers/contoso/company-info"); !r.Allowed {
		t.Errorf("the forged bundle, unverified: ivan writing configuration: %d %s, want allowed", r.Status, r.Reason)
	}
}

func TestInsecureSkipVerification(t *testing.T) {
	unsigned := writeBundle(t, filepath.Join(t.TempDir(), "unsigned.tar.gz"), assembled(t, ""), nil, "")
	c, err := newSource(t, bundle.Options{Path: unsigned, InsecureSkipVerification: true}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Verified {
		t.Error("an unverified bundle reported verified")
	}
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	pub := publicKeyFile(t, signingKey())
	priv := writeFile(t, filepath.Join(dir, "private.pem"), signingKey().private)
	notPEM := writeFile(t, filepath.Join(dir, "junk.pem"), "not a key")
	path := signedRepoBundle(t)

	newErrors := []struct {
		name string
		opts bundle.Options
		want string
	}{
		{"no bundle", bundle.Options{VerificationKey: pub}, "no bundle file given"},
		{"no key and no skip", bundle.Options{Path: path}, "a verification key is required"},
		{"key and skip", bundle.Options{Path: path, VerificationKey: pub, InsecureSkipVerification: true}, "exclude each other"},
		{"symmetric algorithm", bundle.Options{Path: path, VerificationKey: pub, Algorithm: "HS256"}, `signature algorithm "HS256": want one of RS256`},
		{"unknown algorithm", bundle.Options{Path: path, VerificationKey: pub, Algorithm: "XX1"}, `signature algorithm "XX1"`},
	}
	for _, tt := range newErrors {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Logger = quietLogger()
			_, err := bundle.New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}

	readErrors := []struct {
		name string
		key  string
		want string
	}{
		{"missing key file", filepath.Join(dir, "missing.pem"), "bundle verification key: open " + filepath.Join(dir, "missing.pem")},
		{"private key", priv, "is a private key (PRIVATE KEY); give the public key"},
		{"not PEM", notPEM, "bundle verification key " + notPEM + ": no PEM block"},
	}
	for _, tt := range readErrors {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSource(t, bundle.Options{Path: path, VerificationKey: tt.key}).Read(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Read: %v, want an error containing %q", err, tt.want)
			}
		})
	}

	s := newSource(t, bundle.Options{Path: path, VerificationKey: pub})
	if got := s.Watched(); !slices.Equal(got, []string{path, pub}) {
		t.Errorf("Watched() = %v", got)
	}
	s = newSource(t, bundle.Options{Path: path, InsecureSkipVerification: true})
	if got := s.Watched(); !slices.Equal(got, []string{path}) {
		t.Errorf("Watched() = %v", got)
	}
}

// handBuilt is a signed bundle with the repository's policies and the given
// data (JSON), bypassing bundlebuild's checks (which would refuse bad data), and roots as given.
func handBuilt(t *testing.T, data string, roots *[]string, withPolicies bool) string {
	t.Helper()
	b := assembled(t, "")
	b.Manifest.Roots = roots
	b.Data = nil
	if err := json.Unmarshal([]byte(data), &b.Data); err != nil {
		t.Fatal(err)
	}
	if !withPolicies {
		b.Modules = nil
	}
	k := signingKey()
	return writeBundle(t, filepath.Join(t.TempDir(), "b.tar.gz"), b, &k, bundle.DefaultKeyID)
}

func TestDataErrorsInBundle(t *testing.T) {
	root := &[]string{bundle.Root}
	tests := []struct {
		name         string
		data         string
		roots        *[]string
		withPolicies bool
		want         []string
	}{
		{"unknown role",
			`{"tenantgate": {"tenants": {"customers.yaml": {"customers": {"acme": {"type": "distributor"}}},
			  "users.yaml": {"users": {"x@acme.example": {"customer": "acme", "role": "wizard"}}}}}}`,
			root, true, []string{`users.yaml: user "x@acme.example": field "role": `}},
		{"unknown parent",
			`{"tenantgate": {"tenants": {"customers.yaml": {"customers": {"acme": {"type": "site", "parent": "nowhere"}}}}}}`,
			root, true, []string{`customers.yaml: customer "acme": field "parent": `}},
		{"the same customer in two files",
			`{"tenantgate": {"tenants": {"a.yaml": {"customers": {"acme": {"type": "distributor"}}},
			  "b.yaml": {"customers": {"acme": {"type": "distributor"}}}}}}`,
			root, true, []string{`b.yaml: customer "acme": duplicate customer id: also declared in a.yaml`}},
		{"unknown field",
			`{"tenantgate": {"tenants": {"c.yaml": {"customers": {"acme": {"type": "distributor", "colour": "red"}}}}}}`,
			root, true, []string{`c.yaml: customer "acme": field "colour": unknown field`}},
		{"a data file that is not an object",
			`{"tenantgate": {"tenants": {"c.yaml": ["acme"]}}}`,
			root, true, []string{"data at /tenantgate/tenants/c.yaml: want an object"}},
		{"no tenant data", `{}`, root, true, []string{"no tenant data at /tenantgate/tenants"}},
		{"data outside the root, no roots declared",
			`{"other": {"x": 1}, "tenantgate": {"tenants": {"c.yaml": {}}}}`,
			nil, true, []string{"unexpected data at /other"}},
		{"data beside the tenants",
			`{"tenantgate": {"extra": 1, "tenants": {"c.yaml": {}}}}`,
			root, true, []string{"unexpected data at /tenantgate/extra"}},
		{"data outside the declared root", `{"other": {"x": 1}}`, root, true, []string{"manifest roots [tenantgate] do not permit data"}},
		{"no policies",
			`{"tenantgate": {"tenants": {"customers.yaml": {"customers": {"acme": {"type": "distributor"}}}}}}`,
			root, false, []string{"no policies"}},
	}
	pub := publicKeyFile(t, signingKey())
	lineNumber := regexp.MustCompile(`\.yaml:\d`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := handBuilt(t, tt.data, tt.roots, tt.withPolicies)
			_, err := newSource(t, bundle.Options{Path: path, VerificationKey: pub}).Read(context.Background())
			if err == nil {
				t.Fatal("served")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "bundle "+path+": ") {
				t.Errorf("error %q does not start with the bundle path", msg)
			}
			if strings.Contains(msg, "signature verification failed") {
				t.Errorf("error %q blames the signature", msg)
			}
			if lineNumber.MatchString(msg) {
				t.Errorf("error %q has a line number, which means nothing in a bundle", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// Write then rename, as make bundle replaces the file.
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

func TestAlgorithms(t *testing.T) {
	pemKey := func(k any) testKey {
		t.Helper()
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := x509.MarshalPKIXPublicKey(k.(crypto.Signer).Public())
		if err != nil {
			t.Fatal(err)
		}
		return testKey{
			private: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			public:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		}
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, edKey, rsaKey := pemKey(ec), pemKey(ed), signingKey()
	base := assembled(t, "")

	tests := []struct {
		name         string
		key          testKey
		signAlg, alg string // signed with, verified as
		served       bool
	}{
		{"ES256", ecKey, "ES256", "ES256", true},
		{"EdDSA", edKey, "EdDSA", "EdDSA", true},
		{"PS256", rsaKey, "PS256", "PS256", true},
		{"signed PS256, pinned RS256", rsaKey, "PS256", "RS256", false},
		{"signed ES256, pinned RS256", ecKey, "ES256", "RS256", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base // a copy: signing sets only its signatures
			if err := b.GenerateSignature(opabundle.NewSigningConfig(tt.key.private, tt.signAlg, ""), bundle.DefaultKeyID, true); err != nil {
				t.Fatal(err)
			}
			path := writeBundle(t, filepath.Join(t.TempDir(), "b.tar.gz"), b, nil, "")
			_, err := newSource(t, bundle.Options{Path: path, VerificationKey: publicKeyFile(t, tt.key), Algorithm: tt.alg}).Read(context.Background())
			if tt.served && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.served && (err == nil || !strings.Contains(err.Error(), "signature verification failed")) {
				t.Errorf("got %v, want a signature verification failure", err)
			}
		})
	}
}

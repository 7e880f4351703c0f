package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/bundlebuild"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// testKey is an RSA pair written as PEM files; made once per test binary,
// since RSA key generation is slow under -race.
type testKey struct {
	private, public string // PEM text
}

var testKeys = sync.OnceValue(func() [2]testKey {
	var out [2]testKey
	for i := range out {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			panic(err)
		}
		pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			panic(err)
		}
		out[i] = testKey{
			private: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			public:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		}
	}
	return out
})

// signingKey is the key test bundles are signed with; otherKey is another.
func signingKey() testKey { return testKeys()[0] }
func otherKey() testKey   { return testKeys()[1] }

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// publicKeyFile writes k's public key to a temp file.
func publicKeyFile(t *testing.T, k testKey) string {
	t.Helper()
	return writeFile(t, filepath.Join(t.TempDir(), "verification.pem"), k.public)
}

// assembled is the repository's data (or the data in dataDir) and policies
// laid out by bundlebuild, as `tenantgate bundle build` lays them out, with
// the revision "staged" and no signature.
func assembled(t *testing.T, dataDir string) opabundle.Bundle {
	t.Helper()
	if dataDir == "" {
		dataDir = "../../data"
	}
	b, _, err := bundlebuild.Assemble(context.Background(), dataDir, "../../policies")
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.Revision = "staged"
	return b
}

// writeBundle signs b with key under kid (unless key is nil) and writes it
// with OPA's writer, as bundlebuild does.
func writeBundle(t *testing.T, path string, b opabundle.Bundle, key *testKey, kid string) string {
	t.Helper()
	if key != nil {
		if err := b.GenerateSignature(opabundle.NewSigningConfig(key.private, "RS256", ""), kid, true); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := opabundle.NewWriter(&buf).UseModulePath(true).Write(b); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// signedRepoBundle is the repository's data and policies, signed with signingKey.
func signedRepoBundle(t *testing.T) string {
	t.Helper()
	k := signingKey()
	return writeBundle(t, filepath.Join(t.TempDir(), "tenantgate.tar.gz"), assembled(t, ""), &k, bundle.DefaultKeyID)
}

// rewrite copies the tar.gz at src to a new file, passing each entry through
// edit (by name, without the leading slash); edit returns the new content
// and whether to keep the entry. add appends entries. Used to tamper with a
// signed bundle after signing.
func rewrite(t *testing.T, src string, edit func(name string, content []byte) ([]byte, bool), add map[string]string) string {
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
	put := func(name string, content []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			var keep bool
			if content, keep = edit(strings.TrimPrefix(h.Name, "/"), content); !keep {
				continue
			}
		}
		put(h.Name, content)
	}
	for name, content := range add {
		put(name, []byte(content))
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

// replaceIn returns an edit that replaces old with new in one entry, and
// fails the test if old is not there (a tamper that changes nothing would
// make the test pass for the wrong reason).
func replaceIn(t *testing.T, entry, old, new string) func(string, []byte) ([]byte, bool) {
	return func(name string, content []byte) ([]byte, bool) {
		if name != entry {
			return content, true
		}
		if !bytes.Contains(content, []byte(old)) {
			t.Fatalf("%s does not contain %q", entry, old)
		}
		return bytes.Replace(content, []byte(old), []byte(new), 1), true
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newSource is New with a quiet logger; it fails the test on an error.
func newSource(t *testing.T, o bundle.Options) *bundle.Source {
	t.Helper()
	o.Logger = quietLogger()
	s, err := bundle.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testEngine is an engine serving src with an HS256 secret, and a function
// that checks one request for a user with a fresh token.
func testEngine(t *testing.T, src engine.Source) (*engine.Engine, func(user, method, path string) engine.Result) {
	t.Helper()
	secret := writeFile(t, filepath.Join(t.TempDir(), "hs256.secret"), "test-secret-test-secret-test-secret\n")
	ident := identity.Config{HS256SecretFile: secret, Leeway: time.Minute}
	e := engine.New(engine.Options{Source: src, Identity: &ident, Logger: quietLogger(), Timeout: 5 * time.Second})
	check := func(user, method, path string) engine.Result {
		t.Helper()
		tok, err := identity.SignHS256(secret, user, "", "", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return e.Check(context.Background(), &engine.Request{Method: method, Path: path, Authorization: "Bearer " + tok})
	}
	return e, check
}

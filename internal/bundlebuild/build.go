// Package bundlebuild builds the signed OPA bundle that `tenantgate serve
// --bundle` reads (internal/bundle): `tenantgate bundle build` and
// `make bundle` run it.
//
// It validates the tenant data and compiles the policies first, lays them
// out as internal/bundle expects, stamps a revision, signs and writes the
// .tar.gz with OPA's own packages (github.com/open-policy-agent/opa/v1/bundle:
// Bundle.GenerateSignature and the bundle Writer), so what it writes is what
// `opa build -b --signing-key` would write from the same layout.
//
// The layout (internal/bundle's doc says what the reader requires):
//
//	/.manifest          revision, roots ["tenantgate"], rego_version 1
//	/policies/<name>    each non-test .rego file of the policies directory
//	/data.json          {"tenantgate": {"tenants": {"<data file name>": {...}}}}
//	/.signatures.json   a JWS over the SHA-256 of every other file (when signed)
package bundlebuild

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Options says what to build and how to sign it.
type Options struct {
	Data     string // the tenant data directory
	Policies string // the policies directory
	Out      string // the bundle file to write (.tar.gz); replaced by rename
	// Revision is the manifest's revision; empty means the content hash
	// (ContentRevision), so that different content never shares one.
	Revision string
	// SigningKey is a PEM file holding the private key; empty builds an
	// unsigned bundle, which serve refuses unless told to skip verification.
	SigningKey string
	// SigningAlg is the JWS algorithm (default bundle.DefaultAlgorithm):
	// one serve can verify with, so never an HMAC.
	SigningAlg string
	// KeyID is the kid the signature names (default bundle.DefaultKeyID,
	// as opa build signs); serve pins its own key whatever the kid says.
	KeyID string
}

// Result says what Build wrote.
type Result struct {
	Revision  string
	Signed    bool
	Customers int
	Users     int
	DataFiles int
	Modules   int
	Bytes     int // the .tar.gz's size
}

// Build validates, assembles, stamps, signs (with a key) and writes the
// bundle. The file at Out is replaced by rename, so a server watching it
// never reads half a bundle; on any error it is left as it was.
func Build(ctx context.Context, opts Options) (*Result, error) {
	if opts.Data == "" || opts.Policies == "" || opts.Out == "" {
		return nil, errors.New("bundle build: the data dir, the policies dir and the output file are all required")
	}
	var keyPEM []byte
	if opts.SigningKey != "" {
		// Checked before the data is read: a typo should not wait for it.
		if algs := bundle.SignatureAlgorithms(); opts.SigningAlg != "" && !slices.Contains(algs, opts.SigningAlg) {
			return nil, fmt.Errorf("bundle build: signature algorithm %q: want one of %s", opts.SigningAlg, strings.Join(algs, ", "))
		}
		var err error
		if keyPEM, err = os.ReadFile(opts.SigningKey); err != nil {
			return nil, fmt.Errorf("bundle build: signing key: %w", err)
		}
		if err := keyFits(keyPEM, cmp.Or(opts.SigningAlg, bundle.DefaultAlgorithm)); err != nil {
			return nil, fmt.Errorf("bundle build: signing key %s: %w", opts.SigningKey, err)
		}
	} else if opts.SigningAlg != "" || opts.KeyID != "" {
		return nil, errors.New("bundle build: a signing algorithm or key id without a signing key")
	}
	b, data, err := Assemble(ctx, opts.Data, opts.Policies)
	if err != nil {
		return nil, err
	}
	b.Manifest.Revision = opts.Revision
	if b.Manifest.Revision == "" {
		if b.Manifest.Revision, err = ContentRevision(b); err != nil {
			return nil, fmt.Errorf("bundle build: revision: %w", err)
		}
	}
	if keyPEM != nil {
		if err := Sign(&b, keyPEM, opts.SigningAlg, opts.KeyID); err != nil {
			return nil, fmt.Errorf("bundle build: signing key %s: %w", opts.SigningKey, err)
		}
	}
	var buf bytes.Buffer
	if err := Write(&buf, b); err != nil {
		return nil, fmt.Errorf("bundle build: %w", err)
	}
	if n, err := inflatedSize(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("bundle build: %w", err)
	} else if n > bundle.MaxBytes {
		return nil, fmt.Errorf("bundle build: the bundle decompresses to %d bytes, more than serve reads (%d)", n, bundle.MaxBytes)
	}
	if err := writeFileAtomic(opts.Out, buf.Bytes()); err != nil {
		return nil, fmt.Errorf("bundle build: %w", err)
	}
	return &Result{
		Revision: b.Manifest.Revision, Signed: keyPEM != nil,
		Customers: len(data.Customers), Users: len(data.Users), DataFiles: len(data.Files),
		Modules: len(b.Modules), Bytes: buf.Len(),
	}, nil
}

// Assemble reads what Build packs: it validates the tenant data (every
// error, with the loader's file and line), compiles the policies, and lays
// both out with the manifest (roots, rego_version; no revision). The bundle
// is not signed. The data it returns is the validated data.
//
// Each data file is converted to JSON here with tenantgate's reading of
// YAML (YAMLToJSON): a number, a date or a float is taken as written (0123,
// 2024-01-01 and 1.50 stay those strings, as tenant.Load reads them), where
// a generic converter (opa build's) would turn them into 123,
// 2024-01-01T00:00:00Z and 1.5 and silently change an id. The JSON is then
// loaded back and must give exactly the validated data.
func Assemble(ctx context.Context, dataDir, policiesDir string) (opabundle.Bundle, *tenant.Data, error) {
	want, err := tenant.LoadDir(dataDir)
	if err != nil {
		return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: %w", err)
	}
	tenants := make(map[string]any, len(want.Files))
	staged := make([]tenant.File, 0, len(want.Files))
	for _, p := range want.Files {
		content, err := os.ReadFile(p)
		if err != nil {
			return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: %w", err)
		}
		js, err := YAMLToJSON(content)
		if err != nil {
			return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: data file %s: %w", p, err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: data file %s: %w", p, err)
		}
		name := filepath.Base(p)
		tenants[name] = v
		staged = append(staged, tenant.File{Name: name, Content: js})
	}
	got, err := tenant.Load(staged)
	if err != nil {
		return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: the JSON form of %s does not load (a bug in internal/bundlebuild): %w", dataDir, err)
	}
	if err := sameData(want, got); err != nil {
		return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: the JSON form of %s differs from the YAML (a data file changed while building, or a bug in internal/bundlebuild): %w", dataDir, err)
	}

	mods, err := policy.ReadDir(policiesDir)
	if err != nil {
		return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: %w", err)
	}
	if _, err := policy.Compile(ctx, mods); err != nil {
		return opabundle.Bundle{}, nil, fmt.Errorf("bundle build: %w", err)
	}

	roots := []string{bundle.Root}
	b := opabundle.Bundle{
		Manifest: opabundle.Manifest{Roots: &roots},
		Data:     map[string]any{bundle.Root: map[string]any{bundle.TenantsKey: tenants}},
	}
	b.SetRegoVersion(ast.RegoV1)
	for _, m := range mods {
		p := path.Join("/", bundle.PolicyDir, filepath.Base(m.Name))
		b.Modules = append(b.Modules, opabundle.ModuleFile{Path: p, URL: p, Raw: m.Content})
	}
	return b, want, nil
}

// ContentRevision is the revision Build stamps when none is given:
// "sha256:" and the first 16 hex digits of a SHA-256 over the bundle's
// files as Write lays them out, with the manifest's revision left empty and
// without signatures. The files are hashed as sha256sum lists them ("<hex
// of the file's SHA-256>  <name>\n", sorted by name), so the tar and gzip
// framing (which a Go release may change) do not count, and neither does
// the signing key: the same data and policies give the same revision, and
// any byte changed in them gives another. 64 bits make a collision between
// two bundles of one deployment vanishingly unlikely.
func ContentRevision(b opabundle.Bundle) (string, error) {
	b.Manifest.Revision = ""
	b.Signatures = opabundle.SignaturesConfig{}
	var buf bytes.Buffer
	if err := Write(&buf, b); err != nil {
		return "", err
	}
	files, err := tarFiles(buf.Bytes())
	if err != nil {
		return "", err
	}
	slices.SortFunc(files, func(a, b tarFile) int { return strings.Compare(a.name, b.name) })
	h := sha256.New()
	for _, f := range files {
		sum := sha256.Sum256(f.content)
		fmt.Fprintf(h, "%x  %s\n", sum, f.name)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Sign signs b as opa build --signing-key does, with the private key in
// keyPEM, alg (default RS256) and kid keyID (default "default"). Only the
// algorithms serve can verify are accepted: an HMAC secret would have to sit
// on every server, where it could sign as well as check.
func Sign(b *opabundle.Bundle, keyPEM []byte, alg, keyID string) error {
	if alg == "" {
		alg = bundle.DefaultAlgorithm
	}
	if keyID == "" {
		keyID = bundle.DefaultKeyID
	}
	if algs := bundle.SignatureAlgorithms(); !slices.Contains(algs, alg) {
		return fmt.Errorf("signature algorithm %q: want one of %s", alg, strings.Join(algs, ", "))
	}
	if err := keyFits(keyPEM, alg); err != nil {
		return err
	}
	// The PEM text, not the path: OPA's signing config takes a path it
	// cannot stat as the key itself, which would turn a typo into an HMAC
	// secret.
	if err := b.GenerateSignature(opabundle.NewSigningConfig(string(keyPEM), alg, ""), keyID, true); err != nil {
		return fmt.Errorf("%s: %w", alg, err)
	}
	return nil
}

// ParsePrivateKey reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC),
// as a signing key for a bundle.
func ParsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// keyFits checks keyPEM is a private key of alg's kind, so that a mismatch
// says so instead of failing deep in the JWS library.
func keyFits(keyPEM []byte, alg string) error {
	k, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return err
	}
	var kind, algs string
	switch k.(type) {
	case *rsa.PrivateKey:
		kind, algs = "an RSA key", "RS256, RS384, RS512, PS256, PS384 or PS512"
	case *ecdsa.PrivateKey:
		kind, algs = "an ECDSA key", "ES256, ES384 or ES512"
	case ed25519.PrivateKey:
		kind, algs = "an Ed25519 key", "EdDSA"
	default:
		return fmt.Errorf("unsupported private key type %T", k)
	}
	if !strings.Contains(algs, alg) {
		return fmt.Errorf("%s cannot sign %s: sign with %s", kind, alg, algs)
	}
	return nil
}

// Write writes b as a .tar.gz with OPA's bundle writer, module files at
// their paths (as opa build does).
func Write(w io.Writer, b opabundle.Bundle) error {
	return opabundle.NewWriter(w).UseModulePath(true).Write(b)
}

type tarFile struct {
	name    string
	content []byte
}

// tarFiles reads back the files of a .tar.gz Write made (in memory, so its
// size is what Build just built).
func tarFiles(tgz []byte) ([]tarFile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var files []tarFile
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files = append(files, tarFile{name: strings.TrimPrefix(h.Name, "/"), content: content})
	}
}

// inflatedSize is what the reader's size bound counts: the decompressed
// length of the .tar.gz.
func inflatedSize(tgz []byte) (int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, zr)
}

// writeFileAtomic writes content to a temporary file beside path and renames
// it over path: a watcher sees the whole new bundle or the old one.
func writeFileAtomic(path string, content []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	_, err = f.Write(content)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

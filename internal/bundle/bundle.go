// Package bundle serves tenantgate from a signed OPA bundle (a .tar.gz built
// by `tenantgate bundle build`, see internal/bundlebuild) instead of the data
// and policies directories. It only reads: building and signing are
// internal/bundlebuild's.
//
// Reading, signature checking and file hashing are OPA's own (the
// github.com/open-policy-agent/opa/v1/bundle reader); this package only
// decides what must be there and turns the bundle into the tenant data and
// policy modules the engine builds a snapshot from.
//
// The layout:
//
//	/.manifest                              revision, roots ["tenantgate"], rego_version 1
//	/policies/<name>.rego                   the policies, no *_test.rego
//	/data.json                              {"tenantgate": {"tenants": {"<data file name>": {...}}}}
//	/.signatures.json                       the signature over every other file
//
// Each entry under /tenantgate/tenants is one data file as it was built
// (customers.yaml, users.yaml, ...), in JSON form; it goes through
// tenant.Load under that name, so the validation is the directory's, and an
// error names the file, the id and the field. Line numbers do not survive
// (all data is one data.json), so errors from a bundle carry none.
package bundle

import (
	"cmp"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/internal/sourcedir"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Where the bundle keeps what tenantgate reads.
const (
	// Root is the one root the manifest declares: the policies' packages
	// (tenantgate.authz, tenantgate.tables) and the tenant data live under it.
	Root = "tenantgate"
	// TenantsKey is the key under Root that holds one object per data file.
	TenantsKey = "tenants"
	// PolicyDir is where the .rego files sit inside the bundle.
	PolicyDir = "policies"
)

// DefaultKeyID is the key id OPA gives a key when none is named (`opa build`
// signs with kid "default", `opa run` verifies with it).
const DefaultKeyID = "default"

// DefaultAlgorithm is the signature algorithm a bundle is signed and
// verified with when none is named.
const DefaultAlgorithm = "RS256"

// Options says which bundle to serve and how to check it.
type Options struct {
	// Path is the bundle file (.tar.gz).
	Path string
	// VerificationKey is a PEM file holding the public key (or a
	// certificate) the signature must verify with. It is read on every
	// load, so replacing it rotates the key.
	VerificationKey string
	// KeyID names the key, as OPA's --verification-key-id does; the
	// signature is checked with this key whatever kid it names. Default
	// "default".
	KeyID string
	// Algorithm is the signature algorithm the key is for, pinned here so
	// the bundle cannot choose it. Default RS256.
	Algorithm string
	// InsecureSkipVerification serves a bundle without checking any
	// signature. For development only: it must be asked for explicitly, and
	// it excludes VerificationKey.
	InsecureSkipVerification bool
	// Logger reports each bundle read; nil is slog.Default().
	Logger *slog.Logger
}

// Source is an engine.Source that reads a bundle file afresh on every build,
// so replacing the file (by rename, as `tenantgate bundle build` does) is a hot reload
// and a bad bundle keeps the last good snapshot serving.
type Source struct {
	opts     Options
	maxBytes int64 // 0: MaxBytes (tests lower it)
	last     atomic.Pointer[ReadStatus]
}

// ReadStatus is what /v1/status shows of a bundle file: the file, and the
// manifest revision and verification of its last good read (the snapshot's
// own revision is a digest of what it decoded to).
type ReadStatus struct {
	File     string    `json:"file"`
	Revision string    `json:"manifest_revision"`
	Verified bool      `json:"verified"`
	ReadAt   time.Time `json:"read_at"`
}

// Status reports the bundle file's last good read ("" revision before one).
func (s *Source) Status() ReadStatus {
	if st := s.last.Load(); st != nil {
		return *st
	}
	return ReadStatus{File: s.opts.Path}
}

// asymmetric lists the algorithms a bundle may be verified with: a public
// key can only verify, whereas an HMAC secret on the server could also sign.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// SignatureAlgorithms returns the algorithms a bundle may be signed with
// for this package to verify it.
func SignatureAlgorithms() []string { return slices.Clone(asymmetric) }

// New checks the options. It fails closed: without a verification key the
// bundle is refused unless InsecureSkipVerification says otherwise.
func New(opts Options) (*Source, error) {
	if opts.Path == "" {
		return nil, errors.New("bundle: no bundle file given")
	}
	switch {
	case opts.VerificationKey == "" && !opts.InsecureSkipVerification:
		return nil, fmt.Errorf("bundle %s: a verification key is required to check its signature "+
			"(or, for development only, skip the check explicitly)", opts.Path)
	case opts.VerificationKey != "" && opts.InsecureSkipVerification:
		return nil, fmt.Errorf("bundle %s: a verification key and skipping verification exclude each other", opts.Path)
	}
	if opts.KeyID == "" {
		opts.KeyID = DefaultKeyID
	}
	if opts.Algorithm == "" {
		opts.Algorithm = DefaultAlgorithm
	}
	if !slices.Contains(asymmetric, opts.Algorithm) {
		return nil, fmt.Errorf("bundle %s: signature algorithm %q: want one of %s", opts.Path, opts.Algorithm, strings.Join(asymmetric, ", "))
	}
	if _, ok := jwa.LookupSignatureAlgorithm(opts.Algorithm); !ok {
		return nil, fmt.Errorf("bundle %s: signature algorithm %q is unknown to the JWS library", opts.Path, opts.Algorithm)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.InsecureSkipVerification {
		opts.Logger.Warn("bundle signature verification is OFF: any bundle at this path is served", "bundle", opts.Path)
	}
	return &Source{opts: opts}, nil
}

// Contents is what one read of the bundle yields.
type Contents struct {
	Data     *tenant.Data
	Policies []policy.File
	Revision string // the manifest's revision
	Verified bool   // false only with InsecureSkipVerification
	// DataFiles is how many data files the bundle holds.
	DataFiles int
}

// Load implements engine.Source.
func (s *Source) Load(ctx context.Context) (*tenant.Data, []policy.File, error) {
	c, err := s.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.Data, c.Policies, nil
}

// Watched implements engine.Source: the bundle file and the key file.
func (s *Source) Watched() []string {
	w := []string{s.opts.Path}
	if s.opts.VerificationKey != "" {
		w = append(w, s.opts.VerificationKey)
	}
	return w
}

// Read reads, verifies and decodes the bundle. Every error names the bundle
// file; a signature problem says "signature verification failed".
func (s *Source) Read(ctx context.Context) (*Contents, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := s.readVerified(true)
	if err != nil {
		return nil, err
	}
	files, ok := rawTenantFiles(&b)
	if !ok {
		// Not the layout bundle build writes: OPA reads it whole, checks
		// its roots, and the data is looked at as it decoded it.
		if b, err = s.readVerified(false); err != nil {
			return nil, err
		}
	}
	c, err := decode(s.opts.Path, &b, files)
	if err != nil {
		return nil, err
	}
	c.Verified = !s.opts.InsecureSkipVerification
	s.last.Store(&ReadStatus{File: s.opts.Path, Revision: c.Revision, Verified: c.Verified, ReadAt: time.Now()})
	s.opts.Logger.Info("bundle read", "bundle", s.opts.Path, "revision", c.Revision, "verified", c.Verified,
		"policies", len(c.Policies), "data_files", c.DataFiles)
	return c, nil
}

// Decode turns a bundle OPA's reader has read (and verified: Decode checks
// no signature) into tenant data and policies, validated as a data
// directory is. name is where it came from (a file, a bundle name and URL)
// and starts every error. The file source and the downloaded bundles
// (internal/distribution) share it, so a bundle is checked the same way
// wherever it comes from.
func Decode(name string, b *opabundle.Bundle) (*Contents, error) {
	files, _ := rawTenantFiles(b)
	return decode(name, b, files)
}

// decode is Decode with the tenant files already taken from a lazily read
// bundle's raw data.json (rawTenantFiles), or nil to take them from b.Data.
func decode(name string, b *opabundle.Bundle, files []tenant.File) (*Contents, error) {
	d := decoder{name: name}
	c := &Contents{Revision: b.Manifest.Revision}
	if len(b.WasmModules) > 0 || len(b.PlanModules) > 0 {
		return nil, d.errorf("holds Wasm or plan modules; tenantgate evaluates Rego only")
	}
	for _, m := range b.Modules {
		name := "/" + strings.TrimPrefix(m.Path, "/")
		if !sourcedir.IsPolicy(path.Base(name)) {
			continue
		}
		c.Policies = append(c.Policies, policy.File{Name: "bundle:" + name, Content: m.Raw})
	}
	if len(c.Policies) == 0 {
		return nil, d.errorf("no policies (.rego files)")
	}
	var err error
	if files == nil {
		if files, err = d.tenantFiles(b.Data); err != nil {
			return nil, err
		}
	}
	if c.Data, err = tenant.Load(files); err != nil {
		return nil, d.errorf("%w", withoutLines(err, files))
	}
	c.DataFiles = len(files)
	return c, nil
}

type decoder struct{ name string }

func (d decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("bundle %s: "+format, append([]any{d.name}, args...)...)
}

func (s *Source) errorf(format string, args ...any) error {
	return fmt.Errorf("bundle %s: "+format, append([]any{s.opts.Path}, args...)...)
}

// readVerified reads the bundle with OPA's reader, which checks the JWS in
// .signatures.json against the pinned key, then every file's hash against
// the signed list (a file added, removed or changed is refused), before any
// module is parsed.
//
// lazy leaves the data files undecoded, in b.Raw (see rawTenantFiles).
func (s *Source) readVerified(lazy bool) (opabundle.Bundle, error) {
	var vc *opabundle.VerificationConfig
	if !s.opts.InsecureSkipVerification {
		kc, err := s.key()
		if err != nil {
			return opabundle.Bundle{}, err
		}
		// KeyID pins the key: OPA then ignores the kid the bundle names.
		vc = opabundle.NewVerificationConfig(map[string]*opabundle.KeyConfig{s.opts.KeyID: kc}, s.opts.KeyID, "", nil)
	}
	b, err := s.read(vc, lazy)
	switch {
	case err == nil:
		return b, nil
	case vc == nil:
		return b, s.errorf("%w", err)
	}
	// OPA's errors are not typed. Tell the operator whether the signature
	// is the problem: if the same file reads fine without verification, it
	// is. What that second read returns is never used.
	if _, uerr := s.read(nil, lazy); uerr == nil {
		return b, s.errorf("signature verification failed: %w", err)
	}
	return b, s.errorf("%w", err)
}

// MaxBytes bounds a bundle's decompressed size. OPA's reader holds every
// file in memory before it checks the signature, so without a bound a small
// unsigned file that inflates to gigabytes could exhaust memory: whoever can
// write the bundle path is exactly who the signature is there to stop.
const MaxBytes = 256 << 20

// checkSize refuses a bundle that decompresses to more than limit bytes,
// streaming it (nothing is kept) before OPA's reader loads it.
func checkSize(path string, limit int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("bundle read failed: not a gzipped tarball: %w", err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(gz, limit+1))
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	if n > limit {
		return fmt.Errorf("decompresses to more than %d bytes; refused before reading it", limit)
	}
	return nil
}

func (s *Source) read(vc *opabundle.VerificationConfig, lazy bool) (opabundle.Bundle, error) {
	limit := cmp.Or(s.maxBytes, MaxBytes)
	if err := checkSize(s.opts.Path, limit); err != nil {
		return opabundle.Bundle{}, err
	}
	f, err := os.Open(s.opts.Path)
	if err != nil {
		return opabundle.Bundle{}, err
	}
	defer f.Close()
	r := opabundle.NewCustomReader(opabundle.NewTarballLoaderWithBaseURL(f, "").WithSizeLimitBytes(limit)).
		WithSizeLimitBytes(limit).
		WithRegoVersion(ast.RegoV1).
		// Lazy mode leaves the data undecoded and skips the roots check;
		// rawTenantFiles does that check for the layout it takes.
		WithLazyLoadingMode(lazy)
	if vc == nil {
		r = r.WithSkipBundleVerification(true)
	} else {
		r = r.WithBundleVerificationConfig(vc)
	}
	return r.Read()
}

// key reads the verification key file; a missing file, or anything but a
// PEM public key or certificate, is a clear error. A private key is
// refused: the server only needs the public half, and should not hold the
// other.
func (s *Source) key() (*opabundle.KeyConfig, error) {
	path := s.opts.VerificationKey
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bundle verification key: %w", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("bundle verification key %s: no PEM block", path)
	}
	switch block.Type {
	case "PUBLIC KEY":
		_, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		_, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		_, err = x509.ParseCertificate(block.Bytes)
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("bundle verification key %s: is a private key (%s); give the public key", path, block.Type)
		}
		return nil, fmt.Errorf("bundle verification key %s: PEM block %q: want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle verification key %s: %w", path, err)
	}
	return &opabundle.KeyConfig{Key: string(pemBytes), Algorithm: s.opts.Algorithm}, nil
}

// rawTenantFiles takes the tenant files straight from the bytes of a bundle
// read lazily, when it has the layout bundle build writes: one /data.json,
// {"tenantgate": {"tenants": {"<name>": {...}, ...}}}, within the manifest's
// roots. Each file is its object's bytes, which tenant.Load reads as JSON
// without a decoded copy: OPA's decoding of the whole data.json into Go
// maps, then encoding each file back, cost a million users over a minute
// and gigabytes. ok is false for any other layout, or anything unexpected
// in this one; the caller then reads the bundle as OPA decodes it, which
// gives the same files or the errors tenantFiles gives.
func rawTenantFiles(b *opabundle.Bundle) (files []tenant.File, ok bool) {
	var raw []byte
	n := 0
	for _, r := range b.Raw {
		if strings.HasSuffix(r.Path, ".rego") {
			continue
		}
		n++
		if strings.TrimPrefix(r.Path, "/") == "data.json" {
			raw = r.Value
		}
	}
	if n != 1 || raw == nil {
		return nil, false
	}
	ranges, ok := splitTenants(raw)
	if !ok || len(ranges) == 0 {
		return nil, false
	}
	for _, r := range ranges {
		if !withinRoots(b.Manifest.Roots, Root+"/"+TenantsKey+"/"+r.name) {
			return nil, false
		}
		files = append(files, tenant.File{Name: r.name, Content: raw[r.start:r.end:r.end]})
	}
	return files, true
}

// withinRoots reports whether the data path p is under one of the roots
// (no roots: the whole tree), as OPA's reader checks when it decodes.
func withinRoots(roots *[]string, p string) bool {
	if roots == nil {
		return true
	}
	for _, r := range *roots {
		r = strings.Trim(r, "/")
		if r == "" || p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

type tenantRange struct {
	name       string
	start, end int
}

// splitTenants finds each /tenantgate/tenants/<name> object in raw, which
// must be exactly {"tenantgate": {"tenants": {...}}} with plain (escape
// free), distinct names and object values; ok is false otherwise. The
// objects themselves are only skipped over here: tenant.Load reads them.
func splitTenants(raw []byte) (out []tenantRange, ok bool) {
	i := 0
	ws := func() {
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\t' || raw[i] == '\r') {
			i++
		}
	}
	char := func(c byte) bool {
		ws()
		if i < len(raw) && raw[i] == c {
			i++
			return true
		}
		return false
	}
	key := func() (string, bool) {
		ws()
		if i >= len(raw) || raw[i] != '"' {
			return "", false
		}
		j := i + 1
		for j < len(raw) && raw[j] != '"' && raw[j] != '\\' && raw[j] >= 0x20 {
			j++
		}
		if j >= len(raw) || raw[j] != '"' {
			return "", false
		}
		k := string(raw[i+1 : j])
		i = j + 1
		return k, char(':')
	}
	// The two levels above the files: one key each.
	for _, want := range []string{Root, TenantsKey} {
		if !char('{') {
			return nil, false
		}
		if k, ok := key(); !ok || k != want {
			return nil, false
		}
	}
	if !char('{') {
		return nil, false
	}
	seen := map[string]bool{}
	for first := true; ; first = false {
		if char('}') && first {
			return nil, false // no files
		}
		name, ok := key()
		if !ok || seen[name] {
			return nil, false
		}
		seen[name] = true
		ws()
		if i >= len(raw) || raw[i] != '{' {
			return nil, false
		}
		start := i
		if i, ok = skipJSONObject(raw, i); !ok {
			return nil, false
		}
		out = append(out, tenantRange{name, start, i})
		if char(',') {
			continue
		}
		if !char('}') {
			return nil, false
		}
		break
	}
	if !char('}') || !char('}') {
		return nil, false
	}
	ws()
	return out, i == len(raw)
}

// skipJSONObject returns the offset just past the object (or list) that
// starts at raw[i], strings and their escapes skipped whole.
func skipJSONObject(raw []byte, i int) (int, bool) {
	depth := 0
	for ; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return i, false
}

// tenantFiles turns /tenantgate/tenants/<name> into one tenant.File per
// name. Data anywhere else is refused: nothing would read it, so it can
// only be a mistake in how the bundle was built.
func (s decoder) tenantFiles(data map[string]any) ([]tenant.File, error) {
	for k := range data {
		if k != Root {
			return nil, s.errorf("unexpected data at /%s: tenant data belongs under /%s/%s/<file>", k, Root, TenantsKey)
		}
	}
	root, ok := data[Root].(map[string]any)
	if !ok {
		return nil, s.errorf("no tenant data at /%s/%s", Root, TenantsKey)
	}
	for k := range root {
		if k != TenantsKey {
			return nil, s.errorf("unexpected data at /%s/%s: tenant data belongs under /%s/%s/<file>", Root, k, Root, TenantsKey)
		}
	}
	tenants, ok := root[TenantsKey].(map[string]any)
	if !ok || len(tenants) == 0 {
		return nil, s.errorf("no tenant data at /%s/%s", Root, TenantsKey)
	}
	files := make([]tenant.File, 0, len(tenants))
	for name, v := range tenants {
		if _, ok := v.(map[string]any); !ok {
			return nil, s.errorf("data at /%s/%s/%s: want an object (one data file), got %T", Root, TenantsKey, name, v)
		}
		// JSON is YAML: tenant.Load parses it as it parses a file.
		content, err := json.Marshal(v)
		if err != nil {
			return nil, s.errorf("data at /%s/%s/%s: %w", Root, TenantsKey, name, err)
		}
		files = append(files, tenant.File{Name: name, Content: content})
	}
	return files, nil
}

// withoutLines drops the line numbers from tenant errors: the JSON the
// bundle holds is one line, so every line would read 1, which points
// nowhere in the operator's file. Only the message of a duplicate across
// files names a line ("also declared in users.yaml:1"), so that suffix goes
// too.
func withoutLines(err error, files []tenant.File) error {
	var errs tenant.Errors
	if !errors.As(err, &errs) {
		return err
	}
	for _, e := range errs {
		e.Line = 0
		for _, f := range files {
			e.Msg = strings.ReplaceAll(e.Msg, f.Name+":1", f.Name)
		}
	}
	return errs
}

package distribution

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Failure stages, as the status and the metrics count them.
const (
	StageDownload     = "download"     // the request failed or the server answered an error
	StageVerification = "verification" // the signature or a file hash did not check out
	StageValidation   = "validation"   // verified, but tenantgate's checks refused it
)

// BundleStatus is one bundle's state, as /v1/status shows it under
// "bundles".
type BundleStatus struct {
	// Source is where the bundle comes from: the service URL and resource,
	// or oci://REF.
	Source         string `json:"source"`
	ActiveRevision string `json:"active_revision,omitempty"`
	// Persisted is true while the revision in force was read from the
	// persistence directory at start and no download has confirmed it yet.
	Persisted bool `json:"persisted"`
	// Verified is false when no signing key is configured: OPA then serves
	// a bundle without checking any signature.
	Verified                 bool           `json:"verified"`
	LastSuccessfulRequest    time.Time      `json:"last_successful_request,omitzero"`
	LastSuccessfulDownload   time.Time      `json:"last_successful_download,omitzero"`
	LastSuccessfulActivation time.Time      `json:"last_successful_activation,omitzero"`
	LastError                string         `json:"last_error,omitempty"`
	LastErrorAt              time.Time      `json:"last_error_at,omitzero"`
	Downloads                uint64         `json:"downloads"`
	Failures                 map[string]int `json:"failures"`
}

// candidate is the latest bundle to try, decoded once: the engine reads the
// bundle source on every reload (a key file change reloads too), and a large
// bundle must not be decoded each time.
type candidate struct {
	revision string
	contents *bundle.Contents
	err      error
	raw      []byte // the tarball, kept to persist it once activated
	etag     string
}

// Source is the engine's bundle source for a bundle the config names: an
// engine.RevisionedSource whose version is the latest downloaded (or, at
// start, persisted) bundle. Start runs OPA's downloader; each new bundle is
// tried by an engine reload and becomes active only if the whole snapshot
// builds from it.
type Source struct {
	// Settler settles the key files read beside the bundle (settle.Wrap's);
	// nil: read as they are.
	Settler engine.Settler

	cfg    *Config
	name   string
	src    *bundleplugin.Source
	log    *slog.Logger
	limit  int64
	report func(map[string]*bundleplugin.Status) // the status plugin, nil: none

	mu    sync.Mutex
	cand  *candidate
	state BundleStatus
	opa   bundleplugin.Status // OPA's status document for the status API
	eng   *engine.Engine
	// activated is closed when a first revision is in force.
	activated chan struct{}
	once      sync.Once
}

// NewSource makes the source for the config's bundle; it downloads nothing
// until Start.
func NewSource(cfg *Config, log *slog.Logger) (*Source, error) {
	if cfg.Bundle == nil {
		return nil, ErrNoBundle
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Source{
		cfg: cfg, name: cfg.BundleName, src: cfg.Bundle, log: log.With("bundle", cfg.BundleName),
		activated: make(chan struct{}),
	}
	s.limit = s.src.SizeLimitBytes
	if s.limit <= 0 || s.limit == opabundle.DefaultSizeLimitBytes {
		// OPA's default is 1 GiB; tenantgate holds a bundle file to 256
		// MiB, and a downloaded one to the same unless the config says.
		s.limit = bundle.MaxBytes
	}
	s.state.Source = s.location()
	s.state.Verified = cfg.BundleSigned
	s.state.Failures = map[string]int{StageDownload: 0, StageVerification: 0, StageValidation: 0}
	s.opa.Name = s.name
	if !s.state.Verified {
		s.log.Warn("bundle signature verification is OFF (no signing section): any bundle the server sends is served; " +
			"configure keys and bundles." + s.name + ".signing to verify")
	}
	return s, nil
}

func (s *Source) location() string {
	c := s.cfg.Manager.Client(s.src.Service)
	if strings.EqualFold(c.Config().Type, "oci") {
		host := strings.TrimPrefix(strings.TrimPrefix(c.Config().URL, "https://"), "http://")
		return "oci://" + strings.TrimSuffix(host, "/") + "/" + strings.TrimPrefix(s.src.Resource, "/")
	}
	return strings.TrimSuffix(c.Config().URL, "/") + "/" + strings.TrimPrefix(s.src.Resource, "/")
}

// Load implements engine.Source.
func (s *Source) Load(ctx context.Context) (*tenant.Data, []policy.File, error) {
	d, p, _, err := s.LoadRevision(ctx)
	return d, p, err
}

// LoadRevision implements engine.RevisionedSource: the latest bundle.
func (s *Source) LoadRevision(context.Context) (*tenant.Data, []policy.File, string, error) {
	s.mu.Lock()
	c := s.cand
	s.mu.Unlock()
	switch {
	case c == nil:
		return nil, nil, "", fmt.Errorf("bundle %s: no revision downloaded yet from %s", s.name, s.state.Source)
	case c.err != nil:
		return nil, nil, "", c.err
	}
	return c.contents.Data, c.contents.Policies, c.revision, nil
}

// Watched implements engine.Source: a downloaded bundle has no file to watch.
func (s *Source) Watched() []string { return nil }

// Status is the bundle's state for /v1/status.
func (s *Source) Status() map[string]BundleStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.Failures = make(map[string]int, len(s.state.Failures))
	for k, v := range s.state.Failures {
		st.Failures[k] = v
	}
	return map[string]BundleStatus{s.name: st}
}

// Activated is closed once a revision is in force (persisted or downloaded).
func (s *Source) Activated() <-chan struct{} { return s.activated }

// persistPath is OPA's: <persistence_directory>/bundles/<name>/bundle.tar.gz.
func (s *Source) persistPath() string {
	return filepath.Join(s.cfg.PersistenceDir, "bundles", s.name, "bundle.tar.gz")
}

// LoadPersisted makes the persisted bundle, when the bundle asks for
// persistence (persist: true) and one is on disk, the version the first
// reload reads; it is checked with the configured keys like a download.
// It reports whether there was one.
func (s *Source) LoadPersisted() bool {
	if !s.src.Persist {
		return false
	}
	path := s.persistPath()
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		s.log.Warn("persisted bundle unreadable; waiting for the server", "path", path, "error", err)
		return false
	}
	r := opabundle.NewCustomReader(opabundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "").WithSizeLimitBytes(s.limit)).
		WithSizeLimitBytes(s.limit).WithRegoVersion(ast.RegoV1).WithLazyLoadingMode(false).
		WithBundleVerificationConfig(s.src.Signing).WithBundleName(s.name)
	if s.src.Signing == nil {
		r = r.WithSkipBundleVerification(true)
	}
	b, err := r.Read()
	if err != nil {
		s.log.Warn("persisted bundle refused; waiting for the server", "path", path, "error", err)
		return false
	}
	c := s.decode(&b, nil, "")
	if c.err != nil {
		s.log.Warn("persisted bundle refused; waiting for the server", "path", path, "error", c.err)
		return false
	}
	s.mu.Lock()
	s.cand = c
	s.state.Persisted = true
	s.mu.Unlock()
	s.log.Info("serving the persisted bundle until the server confirms a revision", "path", path, "revision", c.revision)
	return true
}

func (s *Source) decode(b *opabundle.Bundle, raw []byte, etag string) *candidate {
	c := &candidate{revision: b.Manifest.Revision, raw: raw, etag: etag}
	c.contents, c.err = bundle.Decode(s.name+" ("+s.state.Source+")", b)
	if c.err == nil && c.revision == "" {
		// The revision is what the fleet is compared by; a bundle without
		// one could not be told from its predecessor.
		c.err = fmt.Errorf("bundle %s (%s): the manifest names no revision; build it with `tenantgate bundle build` (a content hash) or --revision", s.name, s.state.Source)
	}
	return c
}

// Attach gives the source the engine whose reloads it drives, and the
// status plugin's update function (nil: no status reporting). Call it
// before the first reload.
func (s *Source) Attach(eng *engine.Engine, report func(map[string]*bundleplugin.Status)) {
	s.eng, s.report = eng, report
}

// Observed is called after the first reload (server.Run's): a persisted
// bundle it activated is reported.
func (s *Source) Observed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if snap := s.eng.Snapshot(); snap != nil && s.cand != nil && snap.Revision == s.cand.revision {
		s.state.ActiveRevision = snap.Revision
		s.state.LastSuccessfulActivation = time.Now().UTC()
		s.opa.SetActivateSuccess(snap.Revision)
		s.once.Do(func() { close(s.activated) })
	}
	s.reportLocked()
}

// Downloader is OPA's HTTP or OCI downloader.
type Downloader interface {
	Start(context.Context)
	Stop(context.Context)
}

// Start runs OPA's downloader for the bundle until ctx ends; Stop it with
// the returned function.
func (s *Source) Start(ctx context.Context) func() {
	client := s.cfg.Manager.Client(s.src.Service)
	parser := ast.ParserOptions{RegoVersion: ast.RegoV1}
	var d Downloader
	if strings.EqualFold(client.Config().Type, "oci") {
		store := ""
		if pd := s.cfg.Manager.GetConfig().PersistenceDirectory; pd != nil {
			store = filepath.Join(*pd, "oci")
		}
		d = download.NewOCI(s.src.Config, client, s.src.Resource, store).
			WithCallback(s.update).
			WithBundleVerificationConfig(s.src.Signing).
			WithSizeLimitBytes(s.limit).
			WithBundlePersistence(s.src.Persist).
			WithBundleParserOpts(parser)
	} else {
		d = download.New(s.src.Config, client, s.src.Resource).
			WithCallback(s.update).
			WithBundleVerificationConfig(s.src.Signing).
			WithSizeLimitBytes(s.limit).
			WithBundlePersistence(s.src.Persist).
			WithBundleName(s.name).
			WithBundleParserOpts(parser)
	}
	d.Start(ctx)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Stop(sctx)
	}
}

// update is the downloader's callback: one poll's outcome.
func (s *Source) update(ctx context.Context, u download.Update) error {
	now := time.Now().UTC()
	s.mu.Lock()
	s.opa.SetRequest()
	if u.Error != nil {
		stage := StageDownload
		if isVerification(u.Error) {
			stage = StageVerification
		}
		s.failLocked(stage, u.Error, now)
		s.opa.SetError(u.Error)
		s.reportLocked()
		s.mu.Unlock()
		return nil // the downloader logs it and backs off
	}
	s.state.LastSuccessfulRequest = now
	s.opa.LastSuccessfulRequest = now
	if u.Bundle == nil { // 304 Not Modified, or a long poll that timed out
		s.reportLocked()
		s.mu.Unlock()
		return nil
	}
	s.state.Downloads++
	s.state.LastSuccessfulDownload = now
	s.opa.SetDownloadSuccess()
	s.opa.SetBundleSize(u.Size)
	s.mu.Unlock()

	var raw []byte
	if u.Raw != nil && s.src.Persist {
		raw, _ = io.ReadAll(u.Raw)
	}
	c := s.decode(u.Bundle, raw, u.ETag)
	s.mu.Lock()
	prev := s.cand
	s.cand = c
	s.mu.Unlock()
	err := s.eng.Reload(ctx)
	if ctx.Err() != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.eng.Snapshot()
	if c.err == nil && snap != nil && snap.Revision == c.revision && s.eng.Status().Sources[engine.SourceBundle].OK {
		s.state.ActiveRevision = c.revision
		s.state.Persisted = false
		s.state.LastSuccessfulActivation = time.Now().UTC()
		s.state.LastError, s.state.LastErrorAt = "", time.Time{}
		s.opa.SetError(nil)
		s.opa.SetActivateSuccess(c.revision)
		s.log.Info("bundle activated", "revision", c.revision, "source", s.state.Source)
		if s.src.Persist && raw != nil {
			if perr := s.persist(raw); perr != nil {
				s.log.Error("could not persist the activated bundle; the previous one stays on disk", "path", s.persistPath(), "error", perr)
			}
		}
		s.once.Do(func() { close(s.activated) })
		s.reportLocked()
		return nil
	}
	verr := c.err
	if verr == nil {
		verr = cmpErr(err, fmt.Errorf("bundle %s revision %s was not activated", s.name, c.revision))
	}
	s.failLocked(StageValidation, verr, time.Now().UTC())
	s.opa.SetError(verr)
	if prev != nil && prev.err == nil && c.err != nil {
		// The previous candidate is the last good: keep it the version
		// reloads read, so a key rotation does not re-raise this error.
		s.cand = prev
	}
	s.reportLocked()
	return verr
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func (s *Source) failLocked(stage string, err error, now time.Time) {
	s.state.Failures[stage]++
	s.state.LastError = stage + ": " + err.Error()
	s.state.LastErrorAt = now
	s.log.Error("bundle refused; the last good revision keeps serving", "stage", stage, "error", err, "active_revision", s.state.ActiveRevision)
}

func (s *Source) reportLocked() {
	if s.report == nil {
		return
	}
	st := s.opa // a copy: the plugin reads it on its own goroutine
	st.Errors = append([]error(nil), s.opa.Errors...)
	s.report(map[string]*bundleplugin.Status{s.name: &st})
}

// persist writes the tarball OPA's way: to a temporary file in the bundle's
// directory, renamed into place, so a crash leaves the old one whole.
func (s *Source) persist(raw []byte) error {
	path := s.persistPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".bundle-*.tar.gz")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// isVerification tells a signature failure from other download errors;
// OPA's reader returns untyped errors, so its wording is what there is.
func isVerification(err error) bool {
	m := strings.ToLower(err.Error())
	for _, w := range []string{"signature", "verif", "digest mismatch", "hash", ".signatures.json", "verification key"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

// Settle implements engine.Settler for the key files read beside the bundle
// (the bundle itself is not a file: the engine reads it without settling).
// Without a Settler set, each read is taken as it is.
func (s *Source) Settle(ctx context.Context, paths []string, read func(context.Context) error) error {
	if s.Settler != nil {
		return s.Settler.Settle(ctx, paths, read)
	}
	return read(ctx)
}

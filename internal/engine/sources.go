package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// A snapshot is made of several sources, and each keeps its own last good
// version (spec section 1): a reload reads every source afresh, a source
// whose read fails keeps the version it had, and the snapshot is composed of
// each source's latest good version. So a broken data file does not hold
// back a key rotation, nor a broken secret file a user's `disabled: true`.
// The snapshot itself stays one immutable value, published with one swap.

// Source names, as /v1/status and the metrics show them.
const (
	SourceData     = "data"     // the tenant data directory (Dirs)
	SourcePolicies = "policies" // the policy directory, compiled (Dirs)
	// SourceBundle is a Source that is not a SplitSource (a signed bundle):
	// its data and policies come from one file, signed together, so they
	// are one source and keep one last good version.
	SourceBundle      = "bundle"
	SourceHS256Secret = "hs256_secret" // identity.Config.HS256SecretFile
	SourceJWKS        = "jwks"         // identity.Config.JWKSFile
	// SourceJWKSURL is identity.Config.Remote, a key set fetched from a
	// URL. It is not read by reloads: its own refreshes publish its keys
	// to the verifiers directly (identity.RemoteKeys), so it and the
	// other sources never wait on each other. Status shows its state.
	SourceJWKSURL = "jwks_url"
)

// SplitSource is a Source whose tenant data and policies are read apart,
// each from its own files, so that each keeps its own last good version.
type SplitSource interface {
	Source
	LoadData(ctx context.Context) (*tenant.Data, error)
	LoadPolicies(ctx context.Context) ([]policy.File, error)
	DataWatched() []string     // the files and directories LoadData reads
	PoliciesWatched() []string // the files and directories LoadPolicies reads
}

// RevisionedSource is a Source whose versions name their own revision (a
// downloaded bundle's manifest revision). The snapshot built from such a
// version takes it as its Revision, so /v1/status, the metrics and every
// decision log line show the revision the bundle server published instead
// of a digest nobody else knows.
type RevisionedSource interface {
	Source
	LoadRevision(ctx context.Context) (*tenant.Data, []policy.File, string, error)
}

// Settler is a Source that keeps a read from files caught mid-change
// (settle.Wrap). The engine reads each split part and each key file through
// Settle, with that part's own files: read is called, and called again
// until paths stayed unchanged around it. A Source that is not split settles
// inside its own Load.
type Settler interface {
	Settle(ctx context.Context, paths []string, read func(context.Context) error) error
}

// SourceStatus is one source's state, as /v1/status shows it under
// "sources".
type SourceStatus struct {
	// OK is false while the source's latest read failed (or did not work
	// with the other sources): its last good version is still in force.
	OK bool `json:"ok"`
	// Revision identifies the version in force: a digest prefix of the
	// data, the policies or the JWKS. None for the HS256 secret, whose
	// digest is not for showing.
	Revision string `json:"revision,omitempty"`
	// LoadedAt is when the version in force was first read.
	LoadedAt    time.Time `json:"loaded_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// A URL key set (SourceJWKSURL) also shows where it comes from, its
	// latest fetch and the key ids in force (and the keys it skips).
	URL         string    `json:"url,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	LastFetchAt time.Time `json:"last_fetch_at,omitzero"`
	KeyIDs      []string  `json:"key_ids,omitempty"`
	SkippedKeys []string  `json:"skipped_keys,omitempty"`
}

// RemoteSourceStatus is a URL key set's state as a SourceStatus.
func RemoteSourceStatus(st identity.RemoteStatus) SourceStatus {
	return SourceStatus{
		OK: st.OK, Revision: st.Revision, LoadedAt: st.LoadedAt, LastError: st.LastError, LastErrorAt: st.LastErrorAt,
		URL: st.URL, Issuer: st.Issuer, LastFetchAt: st.LastFetchAt, KeyIDs: st.KeyIDs, SkippedKeys: st.Skipped,
	}
}

// sourceStates is Status.Sources: the reloaded sources' states as the last
// reload left them, and the URL key set's as of now.
func (e *Engine) sourceStates() map[string]SourceStatus {
	var m map[string]SourceStatus
	if p := e.src.shown.Load(); p != nil {
		m = *p
	}
	if id := e.opts.Identity; id != nil && id.Remote != nil {
		m = maps.Clone(m)
		if m == nil {
			m = map[string]SourceStatus{}
		}
		m[SourceJWKSURL] = RemoteSourceStatus(id.Remote.Status())
	}
	if m == nil {
		m = map[string]SourceStatus{}
	}
	return m
}

// SourceObserver is an Observer that also wants each source's state after
// every reload (the metrics). Every reload reads every source, so a source
// that is not OK failed in that reload.
type SourceObserver interface {
	ObserveSources(map[string]SourceStatus)
}

// ObserveSources implements SourceObserver.
func (os Observers) ObserveSources(st map[string]SourceStatus) {
	for _, o := range os {
		if so, ok := o.(SourceObserver); ok {
			so.ObserveSources(st)
		}
	}
}

// versions holds one version of each source; a nil field is a source not
// read yet (or not configured).
type versions struct {
	data   *tenant.Data
	pol    *policy.Policy
	secret *identity.KeyFile
	jwks   *identity.KeyFile
	rev    string // a RevisionedSource's revision of data and pol; "": none
}

// sources is the engine's per-source state. Everything but shown is only
// touched under Engine.mu.
type sources struct {
	good      versions // each source's last good version
	published versions // what the snapshot in force was composed of
	states    map[string]SourceStatus
	shown     atomic.Pointer[map[string]SourceStatus] // a copy of states, for Status
	pending   *map[string]SourceStatus                // the copy to show once the reload's error is recorded
}

// part is one source the engine reads.
type part struct {
	name string
	// paths are what Settle watches around read; nil: read is not settled
	// by the engine (a Source that is not split settles itself).
	paths []string
	read  func(ctx context.Context, v *versions) error
}

func (e *Engine) parts() []part {
	var ps []part
	if split, ok := e.opts.Source.(SplitSource); ok {
		ps = append(ps,
			part{name: SourceData, paths: split.DataWatched(), read: func(ctx context.Context, v *versions) (err error) {
				v.data, err = split.LoadData(ctx)
				return err
			}},
			part{name: SourcePolicies, paths: split.PoliciesWatched(), read: func(ctx context.Context, v *versions) error {
				files, err := split.LoadPolicies(ctx)
				if err != nil {
					return err
				}
				v.pol, err = policy.Compile(ctx, files)
				return err
			}})
	} else {
		ps = append(ps, part{name: SourceBundle, read: func(ctx context.Context, v *versions) error {
			var (
				data  *tenant.Data
				files []policy.File
				err   error
			)
			if rs, ok := e.opts.Source.(RevisionedSource); ok {
				data, files, v.rev, err = rs.LoadRevision(ctx)
			} else {
				data, files, err = e.opts.Source.Load(ctx)
			}
			if err != nil {
				return err
			}
			if v.pol, err = policy.Compile(ctx, files); err != nil {
				return err
			}
			v.data = data
			return nil
		}})
	}
	if id := e.opts.Identity; id != nil {
		if f := id.HS256SecretFile; f != "" {
			ps = append(ps, part{name: SourceHS256Secret, paths: []string{f}, read: func(_ context.Context, v *versions) (err error) {
				v.secret, err = identity.ReadSecretFile(f)
				return err
			}})
		}
		if f := id.JWKSFile; f != "" {
			ps = append(ps, part{name: SourceJWKS, paths: []string{f}, read: func(_ context.Context, v *versions) (err error) {
				v.jwks, err = identity.ReadJWKSFile(f)
				return err
			}})
		}
	}
	return ps
}

// readResult is one part's read: the fields of its source set in v, or err.
type readResult struct {
	part
	v   versions
	err error
}

// readAll reads every part, each on its own goroutine, so that their
// settling intervals overlap instead of adding up.
func (e *Engine) readAll(ctx context.Context) []readResult {
	settler, _ := e.opts.Source.(Settler)
	ps := e.parts()
	rs := make([]readResult, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			r := &rs[i]
			r.part = p
			read := func(ctx context.Context) error {
				r.v = versions{}
				return p.read(ctx, &r.v)
			}
			if settler != nil && p.paths != nil {
				r.err = settler.Settle(ctx, p.paths, read)
			} else {
				r.err = read(ctx)
			}
		})
	}
	wg.Wait()
	return rs
}

// sourceError is a source's failure in one reload.
type sourceError struct {
	source string
	err    error
}

// Error is the source's error alone, as last_reload_error showed it before
// sources were told apart (it names the file); Status.Sources and the log
// line's "source" attribute say which source it is.
func (se sourceError) Error() string { return se.err.Error() }
func (se sourceError) Unwrap() error { return se.err }

// rebuild reads every source and composes a snapshot of each source's last
// good version. It returns the snapshot to publish (nil: none, the one in
// force stays) and the sources' errors, joined (nil: every source is
// current). It runs under Engine.mu.
func (e *Engine) rebuild(ctx context.Context) (*Snapshot, error) {
	start := time.Now()
	rs := e.readAll(ctx)
	if ctx.Err() != nil {
		for _, r := range rs {
			if r.err != nil {
				return nil, ctx.Err()
			}
		}
	}
	now := time.Now()
	src := &e.src
	old := src.good
	cand := old // the latest good version of each source
	var failed []sourceError
	changed := map[string]bool{}
	for _, r := range rs {
		if r.err != nil {
			failed = append(failed, sourceError{r.name, r.err})
			continue
		}
		if r.v.data != nil && (cand.data == nil || r.v.data.Digest != cand.data.Digest) {
			cand.data, changed[r.name] = r.v.data, true
		}
		if r.v.pol != nil && (cand.pol == nil || r.v.pol.Digest() != cand.pol.Digest()) {
			cand.pol, changed[r.name] = r.v.pol, true
		}
		if r.v.data != nil && r.v.rev != cand.rev {
			// Same content under a new revision is still a new version: the
			// server says which revision is in force.
			cand.rev, changed[r.name] = r.v.rev, true
		}
		if r.v.secret != nil && (cand.secret == nil || r.v.secret.Digest() != cand.secret.Digest()) {
			cand.secret, changed[r.name] = r.v.secret, true
		}
		if r.v.jwks != nil && (cand.jwks == nil || r.v.jwks.Digest() != cand.jwks.Digest()) {
			cand.jwks, changed[r.name] = r.v.jwks, true
		}
	}

	var s *Snapshot
	var blamed []sourceError
	if e.complete(cand) {
		s, blamed = e.composeOrFallBack(ctx, old, cand, changed)
		if s != nil {
			// The composition published keeps its data and policies as the
			// last good ones; a blamed source keeps its older version.
			cand.data, cand.pol, cand.rev = s.Data, s.Policy, s.sourceRev
			src.good = cand
		}
	} else {
		// A source that never loaded (the first load failed): there is
		// nothing to compose. Its error is among failed.
		src.good = cand
	}
	if s == nil && e.current.Load() == nil && len(failed) == 0 && len(blamed) == 0 {
		// Unreachable: every source loaded, so a composition was tried.
		failed = append(failed, sourceError{"engine", errNoSnapshot})
	}

	errs := append(failed, blamed...)
	e.updateStates(rs, errs, cand, changed, now)
	var joined []error
	starting := e.current.Load() == nil
	for _, se := range errs {
		joined = append(joined, se)
		// Before the first snapshot there is no last good version to keep
		// serving: the caller (start-up) reports the error instead.
		if !starting {
			e.opts.Logger.Error("reload failed; this source keeps its last good version", "source", se.source, "error", se.err)
		}
	}
	err := errors.Join(joined...)

	if s != nil {
		cur := src.published
		differs := e.current.Load() == nil || cur.data != s.Data || cur.pol != s.Policy ||
			cur.secret != cand.secret || cur.jwks != cand.jwks || cur.rev != cand.rev
		// All sources current: published as before this change, even
		// unchanged (a reload someone asked for gives fresh caches).
		// Otherwise only when a good source brought something new.
		if differs || err == nil {
			src.published = versions{data: s.Data, pol: s.Policy, secret: cand.secret, jwks: cand.jwks, rev: cand.rev}
			s.BuildTime = time.Since(start)
		} else {
			s = nil
		}
	}
	return s, err
}

// complete reports whether every configured source has a version.
func (e *Engine) complete(v versions) bool {
	if v.data == nil || v.pol == nil {
		return false
	}
	if id := e.opts.Identity; id != nil {
		if id.HS256SecretFile != "" && v.secret == nil || id.JWKSFile != "" && v.jwks == nil {
			return false
		}
	}
	return true
}

// composeOrFallBack composes cand. The data and the policies were each
// checked alone when read; only evaluating one with the other shows that
// they work together. When they do not, a new version of one is what broke
// the composition: the other source's new version is tried alone (the
// data's first: revocations live there), then neither, and the new version
// left out is blamed. Keys never take part in this: a verifier is made of
// any key files.
func (e *Engine) composeOrFallBack(ctx context.Context, old, cand versions, changed map[string]bool) (*Snapshot, []sourceError) {
	s, err := e.compose(ctx, cand)
	if err == nil {
		return s, nil
	}
	if _, split := e.opts.Source.(SplitSource); !split {
		blame := []sourceError{{SourceBundle, fmt.Errorf("its data and policies do not work together: %w", err)}}
		if changed[SourceBundle] && old.data != nil {
			cand.data, cand.pol, cand.rev = old.data, old.pol, old.rev
			if s, _ := e.compose(ctx, cand); s != nil {
				return s, blame
			}
		}
		return nil, blame
	}
	newData, newPol := cand.data != old.data, cand.pol != old.pol
	var blame []sourceError
	switch {
	case newData && newPol:
		blame = []sourceError{
			{SourceData, fmt.Errorf("the new tenant data and the new policies do not work together: %w", err)},
			{SourcePolicies, fmt.Errorf("the new policies and the new tenant data do not work together: %w", err)}}
	case newData:
		blame = []sourceError{{SourceData, fmt.Errorf("the new tenant data does not work with the policies in force: %w", err)}}
	case newPol:
		blame = []sourceError{{SourcePolicies, fmt.Errorf("the new policies do not work with the tenant data in force: %w", err)}}
	default:
		// Neither changed: the keys did, which the composition does not
		// depend on, or the check itself failed (a deadline).
		return nil, []sourceError{{"snapshot", err}}
	}
	if old.data == nil || old.pol == nil {
		return nil, blame // the first load: nothing older to fall back on
	}
	type trial struct {
		v     versions
		blame []sourceError
	}
	var trials []trial
	if newData && newPol {
		t1, t2 := cand, cand
		t1.pol, t2.data = old.pol, old.data
		trials = append(trials,
			trial{t1, []sourceError{{SourcePolicies, fmt.Errorf("the new policies do not work with the tenant data: %w", err)}}},
			trial{t2, []sourceError{{SourceData, fmt.Errorf("the new tenant data does not work with the policies: %w", err)}}})
	}
	t := cand
	t.data, t.pol = old.data, old.pol
	trials = append(trials, trial{t, blame})
	for _, t := range trials {
		if s, err := e.compose(ctx, t.v); err == nil {
			return s, t.blame
		}
	}
	return nil, blame
}

// compose makes a snapshot of v and checks that its parts work together.
func (e *Engine) compose(ctx context.Context, v versions) (*Snapshot, error) {
	var ver *identity.Verifier
	if e.opts.Identity != nil {
		var err error
		if ver, err = identity.NewVerifier(*e.opts.Identity, v.secret, v.jwks); err != nil {
			return nil, err
		}
	}
	s := assemble(v.data, v.pol, ver)
	if v.rev != "" {
		s.Revision, s.sourceRev = v.rev, v.rev
	}
	if err := e.probe(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

// probe decides one ordinary request on s before it is published: a user of
// the data (the first by id, so the check is the same on every reload)
// reading its own customer's users. A policy that compiles may still fail
// to evaluate on real input (two rules giving one value different values);
// published, it would deny every such request with internal_error. The
// probe has a decision's deadline, and overrunning it is no error: a slow
// policy is the deadline's business at request time, and a loaded machine
// must not turn a good edit away.
func (e *Engine) probe(ctx context.Context, s *Snapshot) error {
	sub := ""
	for id := range s.Data.Users {
		if sub == "" || id < sub {
			sub = id
		}
	}
	req := &Request{Method: "GET", Path: "/api/v1/customers/probe/users"}
	if u := s.Data.Users[sub]; u != nil {
		req.Path = "/api/v1/customers/" + u.Customer + "/users"
	}
	pctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	if _, err := s.DecideAs(pctx, sub, req); err != nil && pctx.Err() == nil {
		return fmt.Errorf("probe decision (%s %s as %q): %w", req.Method, req.Path, sub, err)
	}
	return nil
}

// updateStates records each source's state after a reload and publishes a
// copy for Status.
func (e *Engine) updateStates(rs []readResult, errs []sourceError, good versions, changed map[string]bool, now time.Time) {
	src := &e.src
	if src.states == nil {
		src.states = map[string]SourceStatus{}
	}
	failed := map[string]error{}
	for _, se := range errs {
		failed[se.source] = se.err
	}
	for _, r := range rs {
		st := src.states[r.name]
		if err, ok := failed[r.name]; ok {
			st.OK, st.LastError, st.LastErrorAt = false, err.Error(), now
		} else {
			st.OK, st.LastError, st.LastErrorAt = true, "", time.Time{}
			if changed[r.name] {
				st.LoadedAt = now
			}
		}
		st.Revision = revision(r.name, good)
		src.states[r.name] = st
	}
	shown := maps.Clone(src.states)
	src.pending = &shown
}

// publishStates makes the states of the reload that just ended visible to
// Status and the observer. Reload calls it right after it records the
// reload's error, so a reader of /v1/status that sees a source failing also
// sees the error in last_reload_error.
func (e *Engine) publishStates() {
	shown := e.src.pending
	if shown == nil {
		return
	}
	e.src.pending = nil
	if so, ok := e.opts.Observer.(SourceObserver); ok {
		so.ObserveSources(maps.Clone(*shown))
	}
	e.src.shown.Store(shown)
}

// revision is what SourceStatus.Revision shows for a source's version.
func revision(name string, v versions) string {
	var d string
	switch {
	case name == SourceData && v.data != nil:
		d = v.data.Digest
	case name == SourcePolicies && v.pol != nil:
		d = v.pol.Digest()
	case name == SourceBundle && v.data != nil && v.pol != nil:
		if v.rev != "" {
			return v.rev
		}
		return revisionOf(v.data, v.pol) // the snapshot's revision
	case name == SourceJWKS && v.jwks != nil:
		d = v.jwks.Digest()
	}
	return d[:min(len(d), 12)]
}

// Package engine is the policy engine: it builds a snapshot (tenant data,
// compiled policy, prepared query, token verifier) off to the side, publishes
// it with one atomic swap, and answers each request from the snapshot it
// started on. Check never returns an error: every failure is a deny.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Source is where a snapshot's parts come from. Load is called for every
// build, so it reads the files afresh each time (directories, or a bundle).
type Source interface {
	// Load returns the tenant data and policy modules.
	Load(ctx context.Context) (*tenant.Data, []policy.File, error)
	// Watched lists the files and directories whose changes call for a rebuild.
	Watched() []string
}

// Snapshot is one immutable, consistent state: every request is answered
// from exactly one snapshot, never from parts of two.
type Snapshot struct {
	Data     *tenant.Data
	Policy   *policy.Policy
	Verifier *identity.Verifier
	// Revision is a short hex digest over the data and policies (keys are
	// not part of it), or a RevisionedSource's own revision (a bundle's).
	Revision string
	Built    time.Time // when it was built
	// BuildTime is how long Build took: read, parse, validate and index the
	// data, compile the policies, load the keys.
	BuildTime time.Duration
	Files     []string // every file it was built from

	// sourceRev is the RevisionedSource's revision it was built from, "": none.
	sourceRev string

	cache *decisionCache // set by Engine.Reload before publishing; nil: no caching

	eval evaluator // set by Engine.Reload before publishing (evaluator.go)
}

// Build reads the sources and builds a snapshot; it does not publish it.
// With ident nil the snapshot has no verifier: every token is rejected
// (`tenantgate check` decides for a named user instead).
func Build(ctx context.Context, src Source, ident *identity.Config) (*Snapshot, error) {
	start := time.Now()
	data, modules, err := src.Load(ctx)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Compile(ctx, modules)
	if err != nil {
		return nil, err
	}
	var ver *identity.Verifier
	if ident != nil {
		if ver, err = identity.Load(*ident); err != nil {
			return nil, err
		}
	}
	s := assemble(data, pol, ver)
	s.BuildTime = time.Since(start)
	return s, nil
}

// assemble makes a snapshot of parts already loaded (Build's, or each
// source's last good version in Engine.Reload); the caller sets BuildTime.
func assemble(data *tenant.Data, pol *policy.Policy, ver *identity.Verifier) *Snapshot {
	s := &Snapshot{
		Data:     data,
		Policy:   pol,
		Verifier: ver,
		Built:    time.Now(),
	}
	s.Revision = revisionOf(data, pol)
	s.Files = append(append(s.Files, data.Files...), pol.Files()...)
	if ver != nil {
		s.Files = append(s.Files, ver.Files()...)
	}
	return s
}

// revisionOf is a snapshot's revision: a digest over its data and policies.
func revisionOf(data *tenant.Data, pol *policy.Policy) string {
	h := sha256.New()
	fmt.Fprintf(h, "data:%s\npolicy:%s\n", data.Digest, pol.Digest())
	return hex.EncodeToString(h.Sum(nil))[:12]
}

var errNoSnapshot = errors.New("no snapshot loaded")

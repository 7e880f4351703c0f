package engine

import (
	"context"

	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Dirs reads tenant data and policies from two directories, afresh on every
// build, so a reload sees exactly what is on disk then. It is a SplitSource:
// the data and the policies each keep their own last good version.
type Dirs struct {
	Data     string
	Policies string
	// Cache, when set, spares a reload the parsing of the data files whose
	// content has not changed (every file is still read and every check
	// run). nil: every file is parsed on every build.
	Cache *tenant.Cache
}

// Load implements Source.
func (d Dirs) Load(ctx context.Context) (*tenant.Data, []policy.File, error) {
	data, err := d.LoadData(ctx)
	if err != nil {
		return nil, nil, err
	}
	modules, err := d.LoadPolicies(ctx)
	if err != nil {
		return nil, nil, err
	}
	return data, modules, nil
}

// LoadData implements SplitSource.
func (d Dirs) LoadData(context.Context) (*tenant.Data, error) { return d.Cache.LoadDir(d.Data) }

// LoadPolicies implements SplitSource.
func (d Dirs) LoadPolicies(context.Context) ([]policy.File, error) { return policy.ReadDir(d.Policies) }

// Watched implements Source.
func (d Dirs) Watched() []string { return []string{d.Data, d.Policies} }

// DataWatched implements SplitSource.
func (d Dirs) DataWatched() []string { return []string{d.Data} }

// PoliciesWatched implements SplitSource.
func (d Dirs) PoliciesWatched() []string { return []string{d.Policies} }

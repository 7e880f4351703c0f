package engine

import (
	"context"

	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Dirs reads tenant data and policies from two directories, afresh on every
// build, so a reload sees exactly what is on disk then.
type Dirs struct {
	Data     string
	Policies string
	// Cache, when set, spares a reload the parsing of the data files whose
	// content has not changed (every file is still read and every check
	// run). nil: every file is parsed on every build.
	Cache *tenant.Cache
}

// Load implements Source.
func (d Dirs) Load(context.Context) (*tenant.Data, []policy.File, error) {
	data, err := d.Cache.LoadDir(d.Data)
	if err != nil {
		return nil, nil, err
	}
	modules, err := policy.ReadDir(d.Policies)
	if err != nil {
		return nil, nil, err
	}
	return data, modules, nil
}

// Watched implements Source.
func (d Dirs) Watched() []string { return []string{d.Data, d.Policies} }

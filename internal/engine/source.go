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
}

// Load implements Source.
func (d Dirs) Load(context.Context) (*tenant.Data, []policy.File, error) {
	data, err := tenant.LoadDir(d.Data)
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

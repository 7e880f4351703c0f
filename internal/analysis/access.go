package analysis

import (
	"context"
	"fmt"

	"github.com/tenantgate/tenantgate/internal/engine"
)

// Cell is one probe and the policy's decision on it.
type Cell struct {
	Probe
	Outcome
}

// Access is a user's effective permissions over its probe set.
type Access struct {
	User      string   `json:"user"`
	Role      string   `json:"role"`
	Customer  string   `json:"customer"`
	Resources []string `json:"-"`
	Cells     []Cell   `json:"cells"`
	// depth of each customer row below the first, for the text table.
	depth map[string]int
}

// AccessOptions narrows an access sweep.
type AccessOptions struct {
	// Under limits the rows to this customer and the customers below it.
	Under string
}

// UserAccess decides every probe of the user's probe set.
func UserAccess(ctx context.Context, s *engine.Snapshot, user string, opts AccessOptions) (*Access, error) {
	u := s.Data.Users[user]
	if u == nil {
		return nil, fmt.Errorf("user %q: no such user in the tenant data (ids are case-sensitive)", user)
	}
	if opts.Under != "" && s.Data.Customers[opts.Under] == nil {
		return nil, fmt.Errorf("--customer %q: no such customer in the tenant data", opts.Under)
	}
	t := newTree(s.Data)
	res := resources(s)
	ps := probes(places(t, u, opts.Under), res)
	jobs := make([]job, len(ps))
	for i, p := range ps {
		jobs[i] = job{sub: user, req: p.request()}
	}
	ds, err := decideAll(ctx, s, jobs, nil)
	if err != nil {
		return nil, err
	}
	a := &Access{User: user, Role: u.Role, Customer: u.Customer, Resources: res, Cells: make([]Cell, len(ps)), depth: map[string]int{}}
	base := len(s.Data.Customers[u.Customer].Lineage)
	for i, p := range ps {
		a.Cells[i] = Cell{Probe: p, Outcome: outcomeOf(ds[i])}
		if _, ok := a.depth[p.Customer]; !ok {
			a.depth[p.Customer] = len(s.Data.Customers[p.Customer].Lineage) - base
		}
	}
	return a, nil
}

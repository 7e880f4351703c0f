package analysis

import (
	"context"
	"maps"
	"slices"

	"github.com/tenantgate/tenantgate/internal/engine"
)

// Allowed is one user whose request would be allowed.
type Allowed struct {
	User     string            `json:"user"`
	Role     string            `json:"role"`
	Customer string            `json:"customer"`
	Headers  map[string]string `json:"headers"`
}

// WhoCan is every user whose request would be allowed, and the others
// counted by the reason they would be denied with.
type WhoCan struct {
	Method  string         `json:"method"`
	Path    string         `json:"path"`
	Allowed []Allowed      `json:"allowed"`
	Denied  map[string]int `json:"denied"`
}

// UsersWhoCan decides the request for every user of the snapshot.
func UsersWhoCan(ctx context.Context, s *engine.Snapshot, method, path string) (*WhoCan, error) {
	ids := slices.Sorted(maps.Keys(s.Data.Users))
	jobs := make([]job, len(ids))
	for i, id := range ids {
		jobs[i] = job{sub: id, req: engine.Request{Method: method, Path: path}}
	}
	ds, err := decideAll(ctx, s, jobs, nil)
	if err != nil {
		return nil, err
	}
	w := &WhoCan{Method: method, Path: path, Allowed: []Allowed{}, Denied: map[string]int{}}
	for i, d := range ds {
		if !d.Allowed {
			w.Denied[d.Reason]++
			continue
		}
		u := s.Data.Users[ids[i]]
		w.Allowed = append(w.Allowed, Allowed{User: u.ID, Role: u.Role, Customer: u.Customer, Headers: outcomeOf(d).Headers})
	}
	return w, nil
}

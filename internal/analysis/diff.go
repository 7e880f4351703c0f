package analysis

import (
	"context"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Change is one probe of one user whose decision differs between two
// versions.
type Change struct {
	User string `json:"user"`
	Probe
	Before Outcome `json:"before"`
	After  Outcome `json:"after"`
}

// Kind classifies a change: gain, loss, reason (denied both times, for
// another reason) or headers (allowed both times, other headers).
func (c Change) Kind() string {
	switch {
	case !c.Before.Allowed && c.After.Allowed:
		return "gain"
	case c.Before.Allowed && !c.After.Allowed:
		return "loss"
	case !c.After.Allowed:
		return "reason"
	default:
		return "headers"
	}
}

// Summary counts a diff.
type Summary struct {
	Changes       int      `json:"changes"`
	UsersChanged  int      `json:"users_changed"`
	Gains         int      `json:"gains"`
	Losses        int      `json:"losses"`
	Reasons       int      `json:"reason_changes"`
	Headers       int      `json:"header_changes"`
	UsersAdded    []string `json:"users_added"`
	UsersRemoved  []string `json:"users_removed"`
	UsersChecked  int      `json:"users_evaluated"`
	CellsChecked  int      `json:"cells_evaluated"`
	FullEvaluated bool     `json:"full_evaluation"`
}

// Diff is the access changes between two snapshots.
type Diff struct {
	Changes []Change `json:"changes"`
	Summary Summary  `json:"summary"`
}

// DiffOptions controls a diff.
type DiffOptions struct {
	// Full evaluates every user even when the policies are the same.
	Full bool
	// Progress, when set, is told how many users are done of how many.
	Progress func(done, total int)
}

// SnapshotDiff compares every user's access sweep (its probe set in either
// version, decided by each version) between old and new.
//
// When the policies are the same, only the users whose decisions can differ
// are evaluated: a decision is the policy applied to the input DecideAs
// builds, and for a probe (a collection path, never an {id}) that input
// holds only the user's record, its customer's record and the target's
// (id, type, lineage, suspended), and the probe set itself depends only on
// the customers at or below the user's, its customer's locations and its
// computers. So a user none of whose such inputs changed has the same
// decisions in both versions. TestDiffShortcutEqualsFullEvaluation checks
// this against evaluating everyone. A policy edit evaluates everyone.
func SnapshotDiff(ctx context.Context, old, cur *engine.Snapshot, opts DiffOptions) (*Diff, error) {
	full := opts.Full || old.Policy.Digest() != cur.Policy.Digest()
	var users []string
	if full {
		users = unionKeys(old.Data.Users, cur.Data.Users)
	} else {
		users = affectedUsers(old.Data, cur.Data)
	}
	d := &Diff{Changes: []Change{}, Summary: Summary{FullEvaluated: full, UsersChecked: len(users), UsersAdded: []string{}, UsersRemoved: []string{}}}
	for _, id := range users {
		switch {
		case old.Data.Users[id] == nil:
			d.Summary.UsersAdded = append(d.Summary.UsersAdded, id)
		case cur.Data.Users[id] == nil:
			d.Summary.UsersRemoved = append(d.Summary.UsersRemoved, id)
		}
	}
	oldTree, curTree := newTree(old.Data), newTree(cur.Data)
	res := resources(cur)
	if full {
		res = unionStrings(resources(old), res)
	}

	// Users in batches: enough jobs per batch to keep every CPU busy, few
	// enough that a progress bar moves.
	const batchCells = 20000
	changed := map[string]bool{}
	for start := 0; start < len(users); {
		var ps []Probe
		var owners []int
		end := start
		for ; end < len(users) && len(ps) < batchCells; end++ {
			id := users[end]
			up := unionProbes(userProbes(oldTree, old.Data.Users[id], res), userProbes(curTree, cur.Data.Users[id], res))
			for range up {
				owners = append(owners, end)
			}
			ps = append(ps, up...)
		}
		jobs := make([]job, len(ps))
		for i, p := range ps {
			jobs[i] = job{sub: users[owners[i]], req: p.request()}
		}
		before, err := decideAll(ctx, old, jobs, nil)
		if err != nil {
			return nil, err
		}
		after, err := decideAll(ctx, cur, jobs, nil)
		if err != nil {
			return nil, err
		}
		d.Summary.CellsChecked += len(jobs)
		for i := range jobs {
			b, a := outcomeOf(before[i]), outcomeOf(after[i])
			if b.Equal(a) {
				continue
			}
			c := Change{User: jobs[i].sub, Probe: ps[i], Before: b, After: a}
			d.Changes = append(d.Changes, c)
			changed[c.User] = true
			switch c.Kind() {
			case "gain":
				d.Summary.Gains++
			case "loss":
				d.Summary.Losses++
			case "reason":
				d.Summary.Reasons++
			default:
				d.Summary.Headers++
			}
		}
		start = end
		if opts.Progress != nil {
			opts.Progress(end, len(users))
		}
	}
	d.Summary.Changes = len(d.Changes)
	d.Summary.UsersChanged = len(changed)
	return d, nil
}

func userProbes(t *tree, u *tenant.User, res []string) []Probe {
	if u == nil {
		return nil
	}
	return probes(places(t, u, ""), res)
}

// unionProbes is a's probes then b's that a lacks, in order.
func unionProbes(a, b []Probe) []Probe {
	if len(a) == 0 {
		return b
	}
	seen := make(map[Probe]struct{}, len(a))
	for _, p := range a {
		seen[p] = struct{}{}
	}
	out := a
	for _, p := range b {
		if _, ok := seen[p]; !ok {
			out = append(out, p)
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	out := make([]string, 0, len(a))
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func unionStrings(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// affectedUsers lists, sorted, the users whose probe sweeps can differ
// between two data versions under one policy (see SnapshotDiff): those added,
// removed or changed, and those at a customer with a changed customer at or
// below it, in either version.
func affectedUsers(old, cur *tenant.Data) []string {
	// A customer whose decision inputs changed: its term (type, lineage,
	// suspended) or its locations (a location-limited user's probe rows).
	dirty := map[string]bool{}
	for _, id := range unionKeys(old.Customers, cur.Customers) {
		if !sameCustomer(old.Customers[id], cur.Customers[id]) {
			dirty[id] = true
		}
	}
	// Every customer at or above a dirty one reaches it.
	reach := map[string]bool{}
	for id := range dirty {
		for _, d := range []*tenant.Data{old, cur} {
			if c := d.Customers[id]; c != nil {
				for _, a := range c.Lineage {
					reach[a] = true
				}
			}
		}
	}
	var out []string
	for _, id := range unionKeys(old.Users, cur.Users) {
		o, c := old.Users[id], cur.Users[id]
		if !sameUser(o, c) || (o != nil && reach[o.Customer]) || (c != nil && reach[c.Customer]) {
			out = append(out, id)
		}
	}
	return out
}

func sameCustomer(a, b *tenant.Customer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && slices.Equal(a.Lineage, b.Lineage) &&
		slices.Equal(a.Suspended, b.Suspended) && slices.Equal(a.Locations, b.Locations)
}

func sameUser(a, b *tenant.User) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Customer == b.Customer && a.Role == b.Role && a.Disabled == b.Disabled &&
		slices.Equal(a.Locations, b.Locations) && slices.Equal(a.Computers, b.Computers)
}

// Label is how the text output names a probe: "POST contoso/vbr-jobs".
func (p Probe) Label() string {
	var b strings.Builder
	b.WriteString(p.Method)
	b.WriteByte(' ')
	b.WriteString(p.Target())
	return b.String()
}

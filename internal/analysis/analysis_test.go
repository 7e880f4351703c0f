package analysis

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// memSource is tenant data already in memory and the real policies.
type memSource struct{ files []tenant.File }

func (m memSource) Load(context.Context) (*tenant.Data, []policy.File, error) {
	d, err := tenant.Load(m.files)
	if err != nil {
		return nil, nil, err
	}
	mods, err := policy.ReadDir("../../policies")
	return d, mods, err
}

func (memSource) Watched() []string { return nil }

// builder builds the tests' snapshots as the commands do: the default
// evaluator (ir, unless TENANTGATE_EVALUATOR=rego), after its self-check,
// planned once for every snapshot of the unedited policies.
var builder = &engine.Builder{Logger: slog.New(slog.DiscardHandler)}

func build(t testing.TB, files []tenant.File) *engine.Snapshot {
	t.Helper()
	s, err := builder.Build(context.Background(), memSource{files}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomTree is a generated tree of n customers and 2n users (the
// generator's least), kept small: the full sweeps the tests compare against
// are what the analyses exist to avoid.
func randomTree(t testing.TB, seed uint64, n int) (*tenantgen.Dataset, *engine.Snapshot) {
	t.Helper()
	d, err := tenantgen.Generate(tenantgen.Size{Name: "test", Customers: n, Users: 2 * n}, seed)
	if err != nil {
		t.Fatal(err)
	}
	return d, build(t, d.Files())
}

// trees is how many random trees of how many customers an exactness test
// runs on: full (seeds, customers) without -race, fewer and smaller under
// it (raceEnabled), where each decision costs several times as much.
func trees(seeds uint64, customers int) (uint64, int) {
	if raceEnabled {
		return max(1, seeds/2), max(10, customers*3/5)
	}
	return seeds, customers
}

func decide(t testing.TB, s *engine.Snapshot, sub, method, path string) Outcome {
	t.Helper()
	res, err := s.DecideAs(context.Background(), sub, &engine.Request{Method: method, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return outcomeOf(res.Decision)
}

// TestAccessCellsEqualSingleDecisions: on random trees, every cell of access
// is the single decision `tenantgate check` makes for its request, and the
// rows are exactly the customers at or below the user's, plus the user's
// own customer's locations (location-limited) and its computers.
func TestAccessCellsEqualSingleDecisions(t *testing.T) {
	ctx := context.Background()
	seeds, n := trees(2, 20)
	for seed := range seeds {
		_, s := randomTree(t, seed+1, n)
		rng := rand.New(rand.NewPCG(seed, 7))
		ids := slices.Sorted(mapsKeys(s.Data.Users))
		for range 8 {
			u := s.Data.Users[ids[rng.IntN(len(ids))]]
			a, err := UserAccess(ctx, s, u.ID, AccessOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{}
			for id, c := range s.Data.Customers {
				if slices.Contains(c.Lineage, u.Customer) {
					want[id] = true
				}
			}
			if len(u.Locations) > 0 {
				for _, l := range s.Data.Customers[u.Customer].Locations {
					want[u.Customer+"/locations/"+l] = true
				}
			}
			for _, pc := range u.Computers {
				want[u.Customer+"/computers/"+pc] = true
			}
			got := map[string]bool{}
			for _, c := range a.Cells {
				got[strings.TrimSuffix(c.Target(), "/"+c.Resource)] = true
				if d := decide(t, s, u.ID, c.Method, c.Path()); !d.Equal(c.Outcome) {
					t.Fatalf("seed %d %s %s: access says %+v, check says %+v", seed, u.ID, c.Label(), c.Outcome, d)
				}
			}
			if len(a.Cells) != len(got)*len(resources(s))*len(ProbeMethods) {
				t.Errorf("%s: %d cells for %d rows", u.ID, len(a.Cells), len(got))
			}
			if !mapsEqual(got, want) {
				t.Errorf("seed %d %s: rows %v, want %v", seed, u.ID, got, want)
			}
		}
	}
}

func TestAccessUnderACustomer(t *testing.T) {
	s := demo(t)
	a, err := UserAccess(context.Background(), s, "owner@acme.example", AccessOptions{Under: "northwind"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range a.Cells {
		if !slices.Contains(s.Data.Customers[c.Customer].Lineage, "northwind") {
			t.Fatalf("cell %s is not at or below northwind", c.Label())
		}
	}
	if _, err := UserAccess(context.Background(), s, "nobody@x", AccessOptions{}); err == nil || !strings.Contains(err.Error(), "nobody@x") {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := UserAccess(context.Background(), s, "bob@contoso.example", AccessOptions{Under: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown customer: %v", err)
	}
}

// TestWhoCanEqualsCheckingEveryUser: on random trees and the generator's
// request mix, who-can lists exactly the users a single decision allows,
// with their headers, and counts the others by their reasons.
func TestWhoCanEqualsCheckingEveryUser(t *testing.T) {
	ctx := context.Background()
	seeds, n := trees(2, 20)
	for seed := range seeds {
		d, s := randomTree(t, seed+11, n)
		rng := rand.New(rand.NewPCG(seed, 3))
		for range 6 {
			r := d.Requests[rng.IntN(len(d.Requests))]
			w, err := UsersWhoCan(ctx, s, r.Method, r.Path)
			if err != nil {
				t.Fatal(err)
			}
			allowed := map[string]Allowed{}
			for _, a := range w.Allowed {
				allowed[a.User] = a
			}
			denied := map[string]int{}
			for id, u := range s.Data.Users {
				o := decide(t, s, id, r.Method, r.Path)
				a, listed := allowed[id]
				switch {
				case o.Allowed != listed:
					t.Fatalf("%s %s as %s: check allowed=%v, who-can lists=%v", r.Method, r.Path, id, o.Allowed, listed)
				case listed && (a.Role != u.Role || a.Customer != u.Customer || !mapsEqual(a.Headers, o.Headers)):
					t.Fatalf("%s: who-can %+v, check %+v", id, a, o)
				case !o.Allowed:
					denied[o.Reason]++
				}
			}
			if !mapsEqual(denied, w.Denied) {
				t.Fatalf("%s %s: denied %v, want %v", r.Method, r.Path, w.Denied, denied)
			}
		}
	}
}

// fullSweepDiff is the difference of two full access sweeps, the
// definition diff must meet: every user of either version, its probe set in
// either version, decided by each.
func fullSweepDiff(t *testing.T, old, cur *engine.Snapshot) map[string]Change {
	t.Helper()
	ctx := context.Background()
	out := map[string]Change{}
	for _, id := range unionKeys(old.Data.Users, cur.Data.Users) {
		cells := map[Probe][2]*Outcome{}
		var order []Probe
		for side, s := range []*engine.Snapshot{old, cur} {
			if s.Data.Users[id] == nil {
				continue
			}
			a, err := UserAccess(ctx, s, id, AccessOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range a.Cells {
				e := cells[c.Probe]
				if e[0] == nil && e[1] == nil {
					order = append(order, c.Probe)
				}
				o := c.Outcome
				e[side] = &o
				cells[c.Probe] = e
			}
		}
		for _, p := range order {
			e := cells[p]
			for side, s := range []*engine.Snapshot{old, cur} {
				if e[side] == nil {
					o := decide(t, s, id, p.Method, p.Path())
					e[side] = &o
				}
			}
			if !e[0].Equal(*e[1]) {
				out[id+" "+p.Label()] = Change{User: id, Probe: p, Before: *e[0], After: *e[1]}
			}
		}
	}
	return out
}

func changesByKey(d *Diff) map[string]Change {
	out := map[string]Change{}
	for _, c := range d.Changes {
		out[c.User+" "+c.Label()] = c
	}
	return out
}

// edit is one random edit of a generated tree's YAML.
type edit func(d *tenantgen.Dataset, rng *rand.Rand) string

// TestDiffShortcutEqualsFullEvaluation: for random one-user and
// one-customer edits of random trees, the diff that evaluates only the
// users whose inputs changed equals both the diff that evaluates every user
// and the difference of two full access sweeps.
func TestDiffShortcutEqualsFullEvaluation(t *testing.T) {
	ctx := context.Background()
	edits := map[string]edit{
		"user role": func(d *tenantgen.Dataset, rng *rand.Rand) string {
			u := &d.Users[rng.IntN(len(d.Users))]
			roles := []string{"company-administrator", "invoice-auditor", "subtenant-user"}
			u.Role, u.Locations = roles[rng.IntN(len(roles))], nil
			if u.Role != "subtenant-user" {
				u.Computers = nil
			}
			return u.ID
		},
		"user added": func(d *tenantgen.Dataset, rng *rand.Rand) string {
			c := d.Customers[rng.IntN(len(d.Customers))]
			d.Users = append(d.Users, tenantgen.User{ID: "new@" + c.ID, Customer: c.ID, Role: "company-user"})
			return "new@" + c.ID
		},
		"customer disabled": func(d *tenantgen.Dataset, rng *rand.Rand) string {
			c := &d.Customers[rng.IntN(len(d.Customers))]
			c.Disabled = !c.Disabled
			return c.ID
		},
	}
	for name, e := range edits {
		for seed := range uint64(1) {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				d, old := randomTree(t, seed+21, 10)
				rng := rand.New(rand.NewPCG(seed, 99))
				what := e(d, rng)
				cur := build(t, d.Files())
				short, err := SnapshotDiff(ctx, old, cur, DiffOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if short.Summary.FullEvaluated {
					t.Fatal("a data edit under the same policies evaluated every user")
				}
				if n := len(cur.Data.Users); short.Summary.UsersChecked >= n && strings.HasPrefix(name, "user") {
					t.Errorf("%s: the shortcut evaluated %d users of %d", what, short.Summary.UsersChecked, n)
				}
				sweep := fullSweepDiff(t, old, cur)
				for label, got := range map[string]map[string]Change{"shortcut": changesByKey(short)} {
					if len(got) != len(sweep) {
						t.Errorf("%s (%s): %d changes, full sweeps give %d", label, what, len(got), len(sweep))
					}
					for k, want := range sweep {
						c, ok := got[k]
						if !ok || !c.Before.Equal(want.Before) || !c.After.Equal(want.After) {
							t.Errorf("%s (%s): %s: got %+v (present %v), want %+v", label, what, k, c, ok, want)
						}
					}
				}
			})
		}
	}
}

// TestDiffPolicyEditEvaluatesEveryone: a policy edit (here: company-users
// lose read on failover plans) evaluates every user, and the result is the
// difference of two full sweeps.
func TestDiffPolicyEditEvaluatesEveryone(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir, func(name string, b []byte) []byte {
		return []byte(strings.Replace(string(b), `"failover-plans": {"company-owner": "full", "company-administrator": "full", "company-user": "read"`,
			`"failover-plans": {"company-owner": "full", "company-administrator": "full", "company-user": "none"`, 1))
	})
	cur, err := builder.Build(context.Background(), engine.Dirs{Data: "../../data", Policies: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := demo(t)
	d, err := SnapshotDiff(context.Background(), old, cur, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Summary.FullEvaluated || d.Summary.UsersChecked != len(old.Data.Users) || d.Summary.Losses == 0 {
		t.Fatalf("summary %+v", d.Summary)
	}
	sweep := fullSweepDiff(t, old, cur)
	got := changesByKey(d)
	if len(got) != len(sweep) {
		t.Errorf("%d changes, full sweeps give %d", len(got), len(sweep))
	}
	for k, want := range sweep {
		if c, ok := got[k]; !ok || !c.After.Equal(want.After) || !c.Before.Equal(want.Before) {
			t.Errorf("%s: got %+v, want %+v", k, c, want)
		}
	}
}

func TestDiffNothingChanged(t *testing.T) {
	s := demo(t)
	d, err := SnapshotDiff(context.Background(), s, demo(t), DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != 0 || d.Summary.UsersChecked != 0 {
		t.Errorf("identical versions: %+v", d.Summary)
	}
}

// TestExplainShowsAPolicyEditWithoutGoChanges: a fact a policy author adds
// to explain_facts, and a check's wording, appear in explain's output.
func TestExplainShowsAPolicyEditWithoutGoChanges(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir, func(name string, b []byte) []byte {
		if name == "authz.rego" {
			b = []byte(strings.Replace(string(b), "the method is one of the six", "the method is one the portal serves", 1))
		}
		return b
	})
	extra := "package tenantgate.authz\n\nexplain_facts[\"ticket\"] := \"PORTAL-42\"\n"
	if err := os.WriteFile(filepath.Join(dir, "extra.rego"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := engine.Build(context.Background(), engine.Dirs{Data: "../../data", Policies: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Explain(context.Background(), s, "bob@contoso.example", engine.Request{Method: "GET", Path: "/api/v1/customers/contoso/vbr-jobs"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	e.WriteText(&b)
	for _, want := range []string{`ticket:`, `"PORTAL-42"`, "the method is one the portal serves"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, b.String())
		}
	}
	if e.Mismatch != "" {
		t.Errorf("mismatch: %s", e.Mismatch)
	}
}

// TestExplainReportsRowsThatDisagreeWithTheDecision: an explain_order that
// no longer follows the reason chain is reported, and the decision shown is
// still the serving entry point's.
func TestExplainReportsRowsThatDisagreeWithTheDecision(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir, func(name string, b []byte) []byte {
		return []byte(strings.Replace(string(b), `"reason": "location_forbidden"}`, `"reason": "somewhere_else"}`, 1))
	})
	s, err := engine.Build(context.Background(), engine.Dirs{Data: "../../data", Policies: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Explain(context.Background(), s, "bob@contoso.example", engine.Request{Method: "GET", Path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Reason != "location_forbidden" || !strings.Contains(e.Mismatch, "somewhere_else") {
		t.Errorf("reason %q, mismatch %q", e.Reason, e.Mismatch)
	}
}

func TestExplainWithoutTheRuleIsAnError(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir, func(name string, b []byte) []byte {
		s := string(b)
		if i := strings.Index(s, "# METADATA\n# title: Explain"); i >= 0 {
			s = s[:i] + strings.Replace(s[i:], "explain := {", "explain_was := {", 1)
		}
		return []byte(s)
	})
	s, err := engine.Build(context.Background(), engine.Dirs{Data: "../../data", Policies: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Explain(context.Background(), s, "bob@contoso.example", engine.Request{Method: "GET", Path: "/api/v1/customers/contoso/vbr-jobs"})
	if err == nil || !strings.Contains(err.Error(), "no explain rule") {
		t.Errorf("err = %v", err)
	}
}

func copyPolicies(t *testing.T, dir string, edit func(name string, b []byte) []byte) {
	t.Helper()
	files, err := policy.ReadDir("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f.Name)
		if err := os.WriteFile(filepath.Join(dir, name), edit(name, f.Content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func demo(t testing.TB) *engine.Snapshot {
	t.Helper()
	s, err := builder.Build(context.Background(), engine.Dirs{Data: "../../data", Policies: "../../policies"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestParallelSweepEqualsSequential: the sweeps decide on every CPU; on a
// random tree, every user's whole probe set decided on many goroutines
// (more than there are CPUs, so they interleave) is, job for job, what one
// goroutine deciding them in order gets, and what DecideAs gets alone.
func TestParallelSweepEqualsSequential(t *testing.T) {
	ctx := context.Background()
	_, n := trees(1, 20)
	_, s := randomTree(t, 31, n)
	tr, res := newTree(s.Data), resources(s)
	var jobs []job
	for _, id := range slices.Sorted(mapsKeys(s.Data.Users)) {
		for _, p := range userProbes(tr, s.Data.Users[id], res) {
			jobs = append(jobs, job{sub: id, req: p.request()})
		}
	}
	if len(jobs) < 64*8 {
		t.Fatalf("only %d jobs: too few to spread over 8 goroutines", len(jobs))
	}
	seq, err := decideOn(ctx, s, jobs, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reported atomic.Int64
	par, err := decideOn(ctx, s, jobs, 8, func(done int) { reported.Store(max(reported.Load(), int64(done))) })
	if err != nil {
		t.Fatal(err)
	}
	if len(par) != len(jobs) || len(seq) != len(jobs) {
		t.Fatalf("%d and %d decisions for %d jobs", len(par), len(seq), len(jobs))
	}
	for i, j := range jobs {
		one := decide(t, s, j.sub, j.req.Method, j.req.Path)
		if p, q := outcomeOf(par[i]), outcomeOf(seq[i]); !p.Equal(q) || !q.Equal(one) || par[i].Status != seq[i].Status {
			t.Fatalf("job %d (%s %s %s): parallel %+v, sequential %+v, alone %+v", i, j.sub, j.req.Method, j.req.Path, par[i], seq[i], one)
		}
	}
	if reported.Load() != int64(len(jobs)) {
		t.Errorf("progress reached %d of %d", reported.Load(), len(jobs))
	}
}

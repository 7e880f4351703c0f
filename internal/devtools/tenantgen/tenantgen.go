// Package tenantgen generates, from a seed, a valid and realistic tenant tree
// (distributors > sub-distributors > resellers > end-customers > sites, with
// users of all five roles) and a mix of distinct requests against it, for the
// benchmarks (`make bench`). The same size and seed always give the same
// files and the same requests, so numbers from two runs compare.
//
// Each request carries the decision the default policy (policies/) should
// give it; the package's tests check that against the real engine, which
// keeps the generator honest when the policy changes.
package tenantgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Size is the number of customers and users to generate.
type Size struct {
	Name      string
	Customers int
	Users     int
}

// The three sizes of the benchmarks (tenantgate help performance).
var (
	Small  = Size{Name: "small", Customers: 50, Users: 500}
	Medium = Size{Name: "medium", Customers: 2_000, Users: 20_000}
	Large  = Size{Name: "large", Customers: 20_000, Users: 200_000}
	// XL is the largest service providers' portals (issue 14): a million
	// users per sidecar. Opt-in in the benchmarks: generating and loading
	// it takes tens of seconds and about 1 GiB.
	XL = Size{Name: "xl", Customers: 100_000, Users: 1_000_000}
)

// Sizes lists the default benchmark sizes, smallest first; XL is opt-in.
func Sizes() []Size { return []Size{Small, Medium, Large} }

// BenchSizesEnv names the environment variable that lists the sizes the Go
// benchmarks run (comma-separated names, e.g. small,xl); unset, Sizes().
// make bench sets it from BENCH_SIZES, so that xl stays opt-in.
const BenchSizesEnv = "TENANTGATE_BENCH_SIZES"

// BenchSizes returns the sizes $TENANTGATE_BENCH_SIZES names, or Sizes().
func BenchSizes() ([]Size, error) {
	v := strings.TrimSpace(os.Getenv(BenchSizesEnv))
	if v == "" {
		return Sizes(), nil
	}
	out, err := ParseSizes(v)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", BenchSizesEnv, err)
	}
	return out, nil
}

// ParseSizes reads a comma-separated list of size names (small, medium,
// large, xl), as the benchmarks' flags and variables give them.
func ParseSizes(list string) ([]Size, error) {
	var out []Size
	for _, name := range strings.Split(list, ",") {
		s, err := SizeByName(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SizeByName returns Small, Medium, Large or XL by name.
func SizeByName(name string) (Size, error) {
	for _, s := range append(Sizes(), XL) {
		if s.Name == name {
			return s, nil
		}
	}
	return Size{}, fmt.Errorf("tenantgen: unknown size %q: want small, medium, large or xl", name)
}

// Layout is how a dataset is split into files.
type Layout string

const (
	// LayoutDefault is Files: the channel, the end-customers and four
	// users files.
	LayoutDefault Layout = "default"
	// LayoutTwo is TwoFiles: all customers in one file, all users in
	// another, as a tree exported from one system would be.
	LayoutTwo Layout = "two"
	// LayoutSplit is SplitFiles: one file per top-level customer with its
	// whole subtree and their users, as operators of a big tree keep it.
	LayoutSplit Layout = "split"
)

// Layouts lists the layouts.
func Layouts() []Layout { return []Layout{LayoutDefault, LayoutTwo, LayoutSplit} }

// DefaultSeed is the seed of the benchmarks' datasets.
const DefaultSeed uint64 = 4

// RequestCount is how many distinct requests a dataset's mix holds.
const RequestCount = 1000

// Customer is one generated customer.
type Customer struct {
	ID        string
	Name      string // "" for about half of them: the field is optional
	Type      string
	Parent    string // "" on a root
	Locations []string
	Disabled  bool
}

// User is one generated user.
type User struct {
	ID        string
	Customer  string
	Role      string
	Locations []string // sorted; a subset of its customer's
	Computers []string // sorted
	Disabled  bool
}

// Request is one request of the mix, with the decision the default policy
// gives it.
type Request struct {
	User   string `json:"user"` // the token's subject; "" means no Authorization header
	Method string `json:"method"`
	Path   string `json:"path"`
	Allow  bool   `json:"allow"`  // allowed under the default policy
	Reason string `json:"reason"` // the default policy's reason code
}

// Dataset is one generated tenant tree and its request mix.
type Dataset struct {
	Size      Size
	Seed      uint64
	Customers []Customer // parents before children
	Users     []User
	Requests  []Request // RequestCount distinct (user, method, path)
}

// Generate builds the dataset of a size from a seed. It needs at least 10
// customers and twice as many users as customers.
func Generate(size Size, seed uint64) (*Dataset, error) {
	if size.Customers < 10 || size.Users < 2*size.Customers {
		return nil, fmt.Errorf("tenantgen: size %q: want at least 10 customers and twice as many users, got %d and %d",
			size.Name, size.Customers, size.Users)
	}
	g := &gen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		d:   &Dataset{Size: size, Seed: seed},
	}
	g.customers(size.Customers)
	g.users(size.Users)
	if err := g.requests(RequestCount); err != nil {
		return nil, err
	}
	return g.d, nil
}

var (
	sharedMu sync.Mutex
	shared   = map[Size]*sharedEntry{}
)

type sharedEntry struct {
	once sync.Once
	d    *Dataset
	err  error
}

// Shared returns the dataset of size with DefaultSeed, generated once per
// process: benchmarks at several sub-benchmarks share it. Callers must not
// modify it.
func Shared(size Size) (*Dataset, error) {
	sharedMu.Lock()
	e := shared[size]
	if e == nil {
		e = &sharedEntry{}
		shared[size] = e
	}
	sharedMu.Unlock()
	e.once.Do(func() { e.d, e.err = Generate(size, DefaultSeed) })
	return e.d, e.err
}

// Files renders the dataset as YAML documents, split as an operator might:
// the channel (distributors, sub-distributors, resellers), the end-customers
// and sites, and the users over four files. Users name customers declared in
// other files, so loading them exercises the merge.
func (d *Dataset) Files() []tenant.File {
	var channel, leaves []Customer
	for _, c := range d.Customers {
		if c.Type == tenant.TypeEndCustomer || c.Type == tenant.TypeSite {
			leaves = append(leaves, c)
		} else {
			channel = append(channel, c)
		}
	}
	files := []tenant.File{
		{Name: "customers-1-channel.yaml", Content: customersYAML(channel)},
		{Name: "customers-2-end.yaml", Content: customersYAML(leaves)},
	}
	const userFiles = 4
	n := len(d.Users)
	for i := range userFiles {
		part := d.Users[i*n/userFiles : (i+1)*n/userFiles]
		files = append(files, tenant.File{Name: "users-" + strconv.Itoa(i+1) + ".yaml", Content: usersYAML(part)})
	}
	return files
}

// TwoFiles renders the dataset as two documents: customers.yaml and
// users.yaml (at XL, 10 MB and 87 MB).
func (d *Dataset) TwoFiles() []tenant.File {
	return []tenant.File{
		{Name: "customers.yaml", Content: customersYAML(d.Customers)},
		{Name: "users.yaml", Content: usersYAML(d.Users)},
	}
}

// SplitFiles renders the dataset as one document per root customer (a
// distributor: 0.5% of the customers, so 500 files at XL), each holding the
// root's whole subtree, parents first, and the users of those customers.
// Names sort by root: tree-<root id>.yaml.
func (d *Dataset) SplitFiles() []tenant.File {
	root := make(map[string]string, len(d.Customers)) // customer id -> its root's id
	var roots []string
	byRoot := map[string][]Customer{}
	for _, c := range d.Customers { // parents come first
		r := c.ID
		if c.Parent != "" {
			r = root[c.Parent]
		} else {
			roots = append(roots, c.ID)
		}
		root[c.ID] = r
		byRoot[r] = append(byRoot[r], c)
	}
	usersByRoot := map[string][]User{}
	for _, u := range d.Users {
		r := root[u.Customer]
		usersByRoot[r] = append(usersByRoot[r], u)
	}
	files := make([]tenant.File, 0, len(roots))
	for _, r := range roots {
		b := customersYAML(byRoot[r])
		u := usersYAML(usersByRoot[r])
		// One document: the users mapping after the customers one.
		_, body, _ := strings.Cut(string(u), "\n")
		b = append(b, body...)
		files = append(files, tenant.File{Name: "tree-" + r + ".yaml", Content: b})
	}
	return files
}

// LayoutFiles renders the dataset in a layout.
func (d *Dataset) LayoutFiles(l Layout) ([]tenant.File, error) {
	switch l {
	case LayoutDefault, "":
		return d.Files(), nil
	case LayoutTwo:
		return d.TwoFiles(), nil
	case LayoutSplit:
		return d.SplitFiles(), nil
	}
	return nil, fmt.Errorf("tenantgen: unknown layout %q: want default, two or split", l)
}

// WriteDir writes Files into dir (created if missing). Other files already in
// dir are left alone.
func (d *Dataset) WriteDir(dir string) error { return d.WriteLayout(dir, LayoutDefault) }

// WriteLayout writes the dataset's files in a layout into dir (created if
// missing). Other files already in dir are left alone.
func (d *Dataset) WriteLayout(dir string, l Layout) error {
	files, err := d.LayoutFiles(l)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("tenantgen: make data dir: %w", err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, f.Content, 0o644); err != nil {
			return fmt.Errorf("tenantgen: write %s: %w", path, err)
		}
	}
	return nil
}

// Subjects lists the distinct non-empty subjects of the request mix, in
// first-use order: the users a benchmark mints tokens for.
func (d *Dataset) Subjects() []string {
	seen := make(map[string]bool, len(d.Requests))
	var out []string
	for _, r := range d.Requests {
		if r.User != "" && !seen[r.User] {
			seen[r.User] = true
			out = append(out, r.User)
		}
	}
	return out
}

// Allowed returns the share of the request mix the default policy allows.
func (d *Dataset) Allowed() float64 {
	if len(d.Requests) == 0 {
		return 0
	}
	n := 0
	for _, r := range d.Requests {
		if r.Allow {
			n++
		}
	}
	return float64(n) / float64(len(d.Requests))
}

func customersYAML(cs []Customer) []byte {
	b := make([]byte, 0, 96*len(cs)+64)
	b = append(b, "# generated by tenantgen: do not edit\ncustomers:\n"...)
	for _, c := range cs {
		b = append(b, "  "...)
		b = append(b, c.ID...)
		b = append(b, ":\n"...)
		if c.Name != "" {
			b = append(b, "    name: "...)
			b = append(b, c.Name...)
			b = append(b, '\n')
		}
		b = append(b, "    type: "...)
		b = append(b, c.Type...)
		b = append(b, '\n')
		if c.Parent != "" {
			b = append(b, "    parent: "...)
			b = append(b, c.Parent...)
			b = append(b, '\n')
		}
		b = appendList(b, "locations", c.Locations)
		if c.Disabled {
			b = append(b, "    disabled: true\n"...)
		}
	}
	return b
}

func usersYAML(us []User) []byte {
	b := make([]byte, 0, 96*len(us)+64)
	b = append(b, "# generated by tenantgen: do not edit\nusers:\n"...)
	for _, u := range us {
		b = append(b, "  "...)
		b = append(b, u.ID...)
		b = append(b, ":\n    customer: "...)
		b = append(b, u.Customer...)
		b = append(b, "\n    role: "...)
		b = append(b, u.Role...)
		b = append(b, '\n')
		b = appendList(b, "locations", u.Locations)
		b = appendList(b, "computers", u.Computers)
		if u.Disabled {
			b = append(b, "    disabled: true\n"...)
		}
	}
	return b
}

// appendList writes a flow sequence; every generated id is a plain YAML
// scalar, so nothing needs quoting.
func appendList(b []byte, key string, items []string) []byte {
	if len(items) == 0 {
		return b
	}
	b = append(b, "    "...)
	b = append(b, key...)
	b = append(b, ": ["...)
	for i, s := range items {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	return append(b, "]\n"...)
}

// gen holds the generator's state and the indexes the request mix draws on.
type gen struct {
	rng *rand.Rand
	d   *Dataset

	byType     [5][]int // customer indexes per type rank - 1
	index      map[string]int
	children   [][]int
	suspended  []bool  // the customer or one above it is disabled
	owner      []int   // the customer's owner (a user index), -1 when none
	byCustomer [][]int // the users of each customer

	// Users the request mix draws on, by what they can be used for.
	pools     map[pool][]int
	computers int // computer ids handed out so far
}

type pool int

const (
	poolOwner          pool = iota // active company-owner
	poolAdmin                      // active company-administrator without locations
	poolCompanyUser                // active company-user without locations
	poolLimited                    // active administrator or company-user with locations
	poolSubtenant                  // active subtenant-user with computers
	poolSubtenantEmpty             // active subtenant-user without computers
	poolAuditor                    // active invoice-auditor
	poolDisabled                   // disabled user
	poolSuspended                  // enabled user below a disabled customer
)

var typeIDPrefix = [5]string{"dist-", "subd-", "res-", "ec-", "site-"}
var typeLabel = [5]string{"Distributor", "Sub-distributor", "Reseller", "End-customer", "Site"}

// customers lays out the tree: few distributors, more sub-distributors and
// resellers, mostly end-customers (with locations) and their sites. Parents
// come from the level above, with a few resellers and end-customers hung
// directly from a higher level, as real channels have.
func (g *gen) customers(n int) {
	counts := [5]int{
		max(1, n*5/1000),
		max(1, n*20/1000),
		max(1, n*100/1000),
		max(1, n*600/1000),
	}
	counts[4] = n - counts[0] - counts[1] - counts[2] - counts[3]
	g.index = make(map[string]int, n)
	for t := range 5 {
		for k := range counts[t] {
			c := Customer{ID: typeIDPrefix[t] + strconv.Itoa(k+1), Type: tenant.Types[t]}
			if g.rng.IntN(2) == 0 {
				c.Name = typeLabel[t] + " " + strconv.Itoa(k+1)
			}
			if t > 0 {
				pt := t - 1
				// 10% of resellers and 5% of end-customers skip a level.
				if (t == 2 && g.rng.IntN(10) == 0) || (t == 3 && g.rng.IntN(20) == 0) {
					pt = t - 2
				}
				parents := g.byType[pt]
				c.Parent = g.d.Customers[parents[g.rng.IntN(len(parents))]].ID
			}
			if t == 3 {
				c.Locations = []string{"hq"}
				for j := range g.rng.IntN(4) {
					c.Locations = append(c.Locations, "branch-"+strconv.Itoa(j+1))
				}
			}
			g.index[c.ID] = len(g.d.Customers)
			g.byType[t] = append(g.byType[t], len(g.d.Customers))
			g.d.Customers = append(g.d.Customers, c)
		}
	}
	// A few suspended customers, below the sub-distributors so that one
	// suspension does not take out a large share of the tree; the first is
	// always an end-customer, so every size has users below a disabled one.
	disabled := max(1, n/400)
	g.d.Customers[g.pick(g.byType[3])].Disabled = true
	for range disabled - 1 {
		t := 2 + g.rng.IntN(3)
		g.d.Customers[g.pick(g.byType[t])].Disabled = true
	}

	g.children = make([][]int, n)
	g.suspended = make([]bool, n)
	for i, c := range g.d.Customers {
		g.suspended[i] = c.Disabled
		if c.Parent != "" {
			p := g.index[c.Parent]
			g.children[p] = append(g.children[p], i)
			// Parents come first, so the parent's flag is final.
			g.suspended[i] = g.suspended[i] || g.suspended[p]
		}
	}
}

func (g *gen) pick(ids []int) int { return ids[g.rng.IntN(len(ids))] }

// users gives 95% of customers an owner, then spreads the other users over
// the customers with a role mix that fits the customer's type: subtenants
// (with agent-protected computers) only at end-customers and sites, and
// location-limited users at customers that have locations.
func (g *gen) users(m int) {
	d := g.d
	g.owner = make([]int, len(d.Customers))
	g.byCustomer = make([][]int, len(d.Customers))
	g.pools = make(map[pool][]int)
	for i, c := range d.Customers {
		g.owner[i] = -1
		if g.rng.IntN(20) == 0 {
			continue
		}
		g.owner[i] = len(d.Users)
		g.addUser(User{ID: "owner@" + c.ID + ".example", Customer: c.ID, Role: tenant.RoleCompanyOwner})
	}
	for n := len(d.Users); n < m; n++ {
		ci := g.rng.IntN(len(d.Customers))
		c := &d.Customers[ci]
		u := User{ID: "u" + strconv.Itoa(n) + "@" + c.ID + ".example", Customer: c.ID}
		r := g.rng.IntN(100)
		if c.Type == tenant.TypeEndCustomer || c.Type == tenant.TypeSite {
			switch {
			case r < 15:
				u.Role = tenant.RoleCompanyAdministrator
			case r < 60:
				u.Role = tenant.RoleCompanyUser
			case r < 85:
				u.Role = tenant.RoleSubtenantUser
			default:
				u.Role = tenant.RoleInvoiceAuditor
			}
		} else {
			switch {
			case r < 40:
				u.Role = tenant.RoleCompanyAdministrator
			case r < 80:
				u.Role = tenant.RoleCompanyUser
			default:
				u.Role = tenant.RoleInvoiceAuditor
			}
		}
		switch u.Role {
		case tenant.RoleCompanyAdministrator, tenant.RoleCompanyUser:
			if len(c.Locations) > 0 && g.rng.IntN(2) == 0 {
				u.Locations = g.subset(c.Locations)
			}
		case tenant.RoleSubtenantUser:
			if g.rng.IntN(10) != 0 {
				for range 1 + g.rng.IntN(3) {
					g.computers++
					u.Computers = append(u.Computers, "pc-"+strconv.Itoa(g.computers))
				}
				slices.Sort(u.Computers)
			}
		}
		u.Disabled = g.rng.IntN(100) == 0
		g.addUser(u)
	}
}

// subset returns a non-empty random subset of ls, sorted byte-wise.
func (g *gen) subset(ls []string) []string {
	var out []string
	for _, l := range ls {
		if g.rng.IntN(2) == 0 {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		out = append(out, ls[g.rng.IntN(len(ls))])
	}
	slices.Sort(out)
	return out
}

func (g *gen) addUser(u User) {
	i := len(g.d.Users)
	g.d.Users = append(g.d.Users, u)
	ci := g.index[u.Customer]
	g.byCustomer[ci] = append(g.byCustomer[ci], i)
	var p pool
	switch {
	case u.Disabled:
		p = poolDisabled
	case g.suspended[ci]:
		p = poolSuspended
	case u.Role == tenant.RoleCompanyOwner:
		p = poolOwner
	case u.Role == tenant.RoleInvoiceAuditor:
		p = poolAuditor
	case u.Role == tenant.RoleSubtenantUser && len(u.Computers) > 0:
		p = poolSubtenant
	case u.Role == tenant.RoleSubtenantUser:
		p = poolSubtenantEmpty
	case len(u.Locations) > 0:
		p = poolLimited
	case u.Role == tenant.RoleCompanyAdministrator:
		p = poolAdmin
	default:
		p = poolCompanyUser
	}
	g.pools[p] = append(g.pools[p], i)
}

var errNoCandidate = errors.New("no candidate")

// requests draws n distinct requests from the templates below, weighted so
// that about 70% are allowed. A template that finds no fitting user (a tiny
// tree may have no subtenant with computers) is simply drawn again.
func (g *gen) requests(n int) error {
	total := 0
	for _, t := range templates {
		total += t.weight
	}
	seen := make(map[string]bool, n)
	for attempts := 0; len(g.d.Requests) < n; attempts++ {
		if attempts > 200*n {
			return fmt.Errorf("tenantgen: size %q: found only %d distinct requests of %d", g.d.Size.Name, len(g.d.Requests), n)
		}
		w := g.rng.IntN(total)
		var t template
		for _, t = range templates {
			if w < t.weight {
				break
			}
			w -= t.weight
		}
		r, err := t.make(g)
		if err != nil {
			continue
		}
		r.Reason = t.reason
		r.Allow = t.reason == reasonAllowed
		key := r.User + "\x00" + r.Method + "\x00" + r.Path
		if seen[key] {
			continue
		}
		seen[key] = true
		g.d.Requests = append(g.d.Requests, r)
	}
	return nil
}

func (g *gen) user(p pool) (*User, int, error) {
	us := g.pools[p]
	if len(us) == 0 {
		return nil, 0, errNoCandidate
	}
	u := &g.d.Users[g.pick(us)]
	return u, g.index[u.Customer], nil
}

// below returns ci or a customer below it, walking down at random.
func (g *gen) below(ci int) int {
	for len(g.children[ci]) > 0 && g.rng.IntN(3) != 0 {
		ci = g.pick(g.children[ci])
	}
	return ci
}

// outside returns a customer id that is not ci nor below it: another
// customer, or one that does not exist (the policy answers both alike).
func (g *gen) outside(ci int) string {
	for range 20 {
		t := g.rng.IntN(len(g.d.Customers))
		if !g.isAtOrBelow(t, ci) {
			return g.d.Customers[t].ID
		}
	}
	return "gone-" + strconv.Itoa(g.rng.IntN(1000))
}

func (g *gen) isAtOrBelow(t, ci int) bool {
	for {
		if t == ci {
			return true
		}
		p := g.d.Customers[t].Parent
		if p == "" {
			return false
		}
		t = g.index[p]
	}
}

func (g *gen) id() string { return "id-" + strconv.Itoa(1+g.rng.IntN(500)) }

func (g *gen) method(a access) string {
	if a == read {
		return [...]string{"GET", "GET", "GET", "HEAD"}[g.rng.IntN(4)]
	}
	return [...]string{"POST", "PUT", "PATCH", "DELETE"}[g.rng.IntN(4)]
}

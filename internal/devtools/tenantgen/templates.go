package tenantgen

import (
	"slices"
	"strconv"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// The default policy's tables (policies/tables.rego), as far as the request
// templates need them to know in advance what the policy will answer. The
// tests decide every generated request with the real policy, so a drift
// between the two fails there.

type access int

const (
	read access = iota
	full
)

type level int

const (
	none level = iota
	readOwn
	readAll
	fullLevel
)

func (l level) covers(a access) bool {
	if a == read {
		return l != none
	}
	return l == fullLevel
}

type resource struct {
	name, functionality, module string
}

// catalog is the resource catalog of tenantgate help requests.
var catalog = []resource{
	{"company-info", "configuration", ""},
	{"locations", "configuration", ""},
	{"alarm-settings", "configuration", ""},
	{"users", "configuration", "users"},
	{"customers", "configuration", "customers"},
	{"backup-policies", "configuration", "profiles"},
	{"profiles", "configuration", "profiles"},
	{"retention-policies", "configuration", "retention-policies"},
	{"quick-installation", "managed-computers", "quick-installation"},
	{"passphrases", "managed-computers", "quick-installation"},
	{"downloads", "managed-computers", "downloads"},
	{"vbr-jobs", "vbr-jobs", "backup-dashboard"},
	{"agent-jobs", "agent-jobs", "backup-dashboard"},
	{"failover-plans", "failover-plans", "backup-dashboard"},
	{"discovery-rules", "discovery-rules", "backup-dashboard"},
	{"managed-computers", "managed-computers", "backup-dashboard"},
	{"summary", "summary", "backup-dashboard"},
	{"active-alarms", "active-alarms", "backup-dashboard"},
	{"protected-computers", "protected-computers", "backup-dashboard"},
	{"invoices", "invoices", ""},
	{"backup-reports", "backup-reports", ""},
	{"historical-charts", "backup-reports", "historical-charts"},
	{"scheduled-reports", "backup-reports", "scheduled-reports"},
}

// permissions is the roles table: functionality -> level per role, in the
// order of tenant.Roles (owner, administrator, user, subtenant, auditor).
var permissions = map[string][5]level{
	"configuration":       {fullLevel, fullLevel, none, none, none},
	"vbr-jobs":            {fullLevel, fullLevel, fullLevel, none, none},
	"agent-jobs":          {fullLevel, fullLevel, readAll, readOwn, none},
	"failover-plans":      {fullLevel, fullLevel, readAll, none, none},
	"discovery-rules":     {fullLevel, fullLevel, none, none, none},
	"managed-computers":   {fullLevel, fullLevel, readAll, none, none},
	"invoices":            {readAll, none, none, none, readAll},
	"backup-reports":      {fullLevel, fullLevel, readAll, none, none},
	"summary":             {readAll, readAll, readAll, readOwn, none},
	"active-alarms":       {fullLevel, fullLevel, readAll, readOwn, none},
	"protected-computers": {readAll, readAll, readAll, readOwn, none},
}

func levelOf(role string, r resource) level {
	return permissions[r.functionality][slices.Index(tenant.Roles, role)]
}

// available is the customer-types table: only quick installation (not for
// distributors and sub-distributors) and customers (not for sites) are ever
// unavailable.
func available(r resource, customerType string) bool {
	switch r.module {
	case "quick-installation":
		return customerType != tenant.TypeDistributor && customerType != tenant.TypeSubDistributor
	case "customers":
		return customerType != tenant.TypeSite
	}
	return true
}

// idIsComputer marks the resources whose {id} is a computer qualifier.
func idIsComputer(r resource) bool {
	return r.name == "protected-computers" || r.name == "managed-computers"
}

func (g *gen) resource(ok func(resource) bool) (resource, error) {
	var fit []resource
	for _, r := range catalog {
		if ok(r) {
			fit = append(fit, r)
		}
	}
	if len(fit) == 0 {
		return resource{}, errNoCandidate
	}
	return fit[g.rng.IntN(len(fit))], nil
}

func customerPath(customer string, rest ...string) string {
	p := "/api/v1/customers/" + customer
	for _, s := range rest {
		p += "/" + s
	}
	return p
}

// maybeID appends an {id} to half the paths.
func (g *gen) maybeID(p string) string {
	if g.rng.IntN(2) == 0 {
		return p + "/" + g.id()
	}
	return p
}

const reasonAllowed = "allowed"

type template struct {
	weight int // per mille
	reason string
	make   func(g *gen) (Request, error)
}

// templates sum to 1000; the allowed ones to 700.
var templates = []template{
	// Allowed.
	{140, reasonAllowed, func(g *gen) (Request, error) { return g.inSubtree(poolOwner, read) }},
	{80, reasonAllowed, func(g *gen) (Request, error) { return g.inSubtree(poolOwner, full) }},
	{120, reasonAllowed, func(g *gen) (Request, error) { return g.inSubtree(poolAdmin, g.access(60)) }},
	{100, reasonAllowed, func(g *gen) (Request, error) { return g.inSubtree(poolCompanyUser, g.access(75)) }},
	{100, reasonAllowed, (*gen).limitedAllowed},
	{80, reasonAllowed, (*gen).subtenantAllowed},
	{50, reasonAllowed, (*gen).invoices},
	{30, reasonAllowed, (*gen).ownerManagesUser},
	// Denied, one template per reason (role_forbids has two).
	{55, "outside_tenant", (*gen).outsideTenant},
	{45, "role_forbids", (*gen).roleForbids},
	{15, "role_forbids", (*gen).ownerProtected},
	{30, "module_unavailable", (*gen).moduleUnavailable},
	{30, "location_forbidden", (*gen).locationForbidden},
	{30, "computer_forbidden", (*gen).computerForbidden},
	{15, "user_disabled", func(g *gen) (Request, error) { return g.anyRoute(poolDisabled) }},
	{15, "customer_disabled", func(g *gen) (Request, error) { return g.anyRoute(poolSuspended) }},
	{20, "unauthenticated", (*gen).unauthenticated},
	{10, "unknown_user", (*gen).unknownUser},
	{10, "bad_path", (*gen).badPath},
	{15, "no_route", (*gen).noRoute},
	{10, "method_not_allowed", (*gen).methodNotAllowed},
}

// access returns read with the given percentage, else full.
func (g *gen) access(readPercent int) access {
	if g.rng.IntN(100) < readPercent {
		return read
	}
	return full
}

// activePools are the users who pass the identity and suspension checks.
var activePools = []pool{poolOwner, poolAdmin, poolCompanyUser, poolLimited, poolSubtenant, poolSubtenantEmpty, poolAuditor}

func (g *gen) activeUser() (*User, int, error) {
	return g.user(activePools[g.rng.IntN(len(activePools))])
}

// inSubtree: a user without a scope does what the role allows, at its own
// customer or one below it, on a module the target's type has.
func (g *gen) inSubtree(p pool, a access) (Request, error) {
	u, ci, err := g.user(p)
	if err != nil {
		return Request{}, err
	}
	t := g.d.Customers[g.below(ci)]
	r, err := g.resource(func(r resource) bool { return levelOf(u.Role, r).covers(a) && available(r, t.Type) })
	if err != nil {
		return Request{}, err
	}
	return Request{User: u.ID, Method: g.method(a), Path: g.maybeID(customerPath(t.ID, r.name))}, nil
}

// limitedAllowed: a location-limited user at its own customer, reading or
// writing through one of its locations, or reading without a qualifier (the
// upstream filters by x-tenantgate-locations).
func (g *gen) limitedAllowed() (Request, error) {
	u, ci, err := g.user(poolLimited)
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci]
	a := g.access(70)
	qualified := a == full || g.rng.IntN(2) == 0
	r, err := g.resource(func(r resource) bool {
		return levelOf(u.Role, r).covers(a) && available(r, c.Type) && !(qualified && r.name == "locations")
	})
	if err != nil {
		return Request{}, err
	}
	p := customerPath(c.ID, r.name)
	if qualified {
		p = customerPath(c.ID, "locations", u.Locations[g.rng.IntN(len(u.Locations))], r.name)
	}
	method := g.method(a)
	withID := g.maybeID(p)
	if r.name == "locations" && withID != p {
		// The {id} of locations is a location qualifier: one of the user's.
		// (No draw from rng, so the rest of the dataset stays the same.)
		withID = p + "/" + u.Locations[0]
	}
	return Request{User: u.ID, Method: method, Path: withID}, nil
}

// readOwn lists the resources a subtenant reads for its own computers.
func readOwnResources() []resource {
	var out []resource
	for _, r := range catalog {
		if levelOf(tenant.RoleSubtenantUser, r) == readOwn {
			out = append(out, r)
		}
	}
	return out
}

// subtenantAllowed: a subtenant reads a collection (filtered by
// x-tenantgate-computers), one of its computers, or a resource qualified by
// one of its computers.
func (g *gen) subtenantAllowed() (Request, error) {
	u, ci, err := g.user(poolSubtenant)
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci].ID
	pc := u.Computers[g.rng.IntN(len(u.Computers))]
	rs := readOwnResources()
	r := rs[g.rng.IntN(len(rs))]
	var p string
	switch g.rng.IntN(3) {
	case 0:
		p = customerPath(c, r.name)
	case 1:
		p = customerPath(c, "protected-computers", pc)
	default:
		p = customerPath(c, "computers", pc, r.name)
	}
	return Request{User: u.ID, Method: g.method(read), Path: p}, nil
}

// invoices: an invoice auditor (or an owner) reads invoices at or below its
// customer.
func (g *gen) invoices() (Request, error) {
	p := poolAuditor
	if g.rng.IntN(4) == 0 {
		p = poolOwner
	}
	u, ci, err := g.user(p)
	if err != nil {
		return Request{}, err
	}
	t := g.d.Customers[g.below(ci)].ID
	return Request{User: u.ID, Method: g.method(read), Path: g.maybeID(customerPath(t, "invoices"))}, nil
}

// ownerManagesUser: an owner edits a user at or below its customer, the
// owner of that customer included (owner protection lets it).
func (g *gen) ownerManagesUser() (Request, error) {
	u, ci, err := g.user(poolOwner)
	if err != nil {
		return Request{}, err
	}
	ti := g.below(ci)
	if len(g.byCustomer[ti]) == 0 {
		return Request{}, errNoCandidate
	}
	named := g.d.Users[g.pick(g.byCustomer[ti])].ID
	method := [...]string{"PUT", "PATCH", "DELETE"}[g.rng.IntN(3)]
	return Request{User: u.ID, Method: method, Path: customerPath(g.d.Customers[ti].ID, "users", named)}, nil
}

// outsideTenant: any active user, any resource and method, at a customer
// that is neither its own nor below it (or that does not exist).
func (g *gen) outsideTenant() (Request, error) {
	u, ci, err := g.activeUser()
	if err != nil {
		return Request{}, err
	}
	r := catalog[g.rng.IntN(len(catalog))]
	return Request{User: u.ID, Method: g.method(g.access(70)), Path: g.maybeID(customerPath(g.outside(ci), r.name))}, nil
}

// roleForbids: an active user at its own customer asks for more than its
// role's level on a module its customer has.
func (g *gen) roleForbids() (Request, error) {
	u, ci, err := g.activeUser()
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci]
	a := g.access(50)
	r, err := g.resource(func(r resource) bool { return !levelOf(u.Role, r).covers(a) && available(r, c.Type) })
	if err != nil {
		return Request{}, err
	}
	return Request{User: u.ID, Method: g.method(a), Path: g.maybeID(customerPath(c.ID, r.name))}, nil
}

// ownerProtected: an administrator edits the owner of its customer or of one
// below it: only an owner may.
func (g *gen) ownerProtected() (Request, error) {
	u, ci, err := g.user(poolAdmin)
	if err != nil {
		return Request{}, err
	}
	ti := g.below(ci)
	if g.owner[ti] < 0 {
		return Request{}, errNoCandidate
	}
	method := [...]string{"PUT", "PATCH", "DELETE"}[g.rng.IntN(3)]
	return Request{User: u.ID, Method: method, Path: customerPath(g.d.Customers[ti].ID, "users", g.d.Users[g.owner[ti]].ID)}, nil
}

// moduleUnavailable: quick installation at a distributor or sub-distributor,
// or customers at a site, by a user without a scope.
func (g *gen) moduleUnavailable() (Request, error) {
	pools := []pool{poolOwner, poolAdmin, poolCompanyUser, poolAuditor}
	for range 50 {
		u, ci, err := g.user(pools[g.rng.IntN(len(pools))])
		if err != nil {
			return Request{}, err
		}
		ti := g.below(ci)
		t := g.d.Customers[ti]
		var res string
		switch t.Type {
		case tenant.TypeDistributor, tenant.TypeSubDistributor:
			res = [...]string{"quick-installation", "passphrases"}[g.rng.IntN(2)]
		case tenant.TypeSite:
			res = "customers"
		default:
			continue
		}
		return Request{User: u.ID, Method: g.method(g.access(50)), Path: g.maybeID(customerPath(t.ID, res))}, nil
	}
	return Request{}, errNoCandidate
}

// locationForbidden: a location-limited user goes through a location that is
// not one of its own, or writes without naming one.
func (g *gen) locationForbidden() (Request, error) {
	u, ci, err := g.user(poolLimited)
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci]
	if g.rng.IntN(2) == 0 {
		r, err := g.resource(func(r resource) bool {
			return levelOf(u.Role, r).covers(full) && available(r, c.Type)
		})
		if err != nil {
			return Request{}, err
		}
		return Request{User: u.ID, Method: g.method(full), Path: g.maybeID(customerPath(c.ID, r.name))}, nil
	}
	var others []string
	for _, l := range c.Locations {
		if !slices.Contains(u.Locations, l) {
			others = append(others, l)
		}
	}
	other := "branch-9" // none has it: any location that is not the user's
	if len(others) > 0 {
		other = others[g.rng.IntN(len(others))]
	}
	r, err := g.resource(func(r resource) bool {
		return levelOf(u.Role, r).covers(read) && available(r, c.Type) && r.name != "locations"
	})
	if err != nil {
		return Request{}, err
	}
	return Request{User: u.ID, Method: g.method(read), Path: g.maybeID(customerPath(c.ID, "locations", other, r.name))}, nil
}

// computerForbidden: a subtenant names a computer that is not its own, reads
// a single non-computer item, or has no computers at all.
func (g *gen) computerForbidden() (Request, error) {
	rs := readOwnResources()
	r := rs[g.rng.IntN(len(rs))]
	if g.rng.IntN(4) == 0 {
		u, ci, err := g.user(poolSubtenantEmpty)
		if err != nil {
			return Request{}, err
		}
		return Request{User: u.ID, Method: g.method(read), Path: customerPath(g.d.Customers[ci].ID, r.name)}, nil
	}
	u, ci, err := g.user(poolSubtenant)
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci].ID
	other := "pc-" + strconv.Itoa(1+g.rng.IntN(g.computers))
	if slices.Contains(u.Computers, other) {
		return Request{}, errNoCandidate
	}
	var p string
	switch g.rng.IntN(3) {
	case 0:
		p = customerPath(c, "protected-computers", other)
	case 1:
		p = customerPath(c, "computers", other, r.name)
	default:
		if idIsComputer(r) {
			return Request{}, errNoCandidate
		}
		p = customerPath(c, r.name, g.id())
	}
	return Request{User: u.ID, Method: g.method(read), Path: p}, nil
}

// anyRoute: a user of pool p asks for any resource at its own customer.
func (g *gen) anyRoute(p pool) (Request, error) {
	u, ci, err := g.user(p)
	if err != nil {
		return Request{}, err
	}
	r := catalog[g.rng.IntN(len(catalog))]
	return Request{User: u.ID, Method: g.method(g.access(70)), Path: g.maybeID(customerPath(g.d.Customers[ci].ID, r.name))}, nil
}

func (g *gen) unauthenticated() (Request, error) {
	r, err := g.anyRoute(poolOwner)
	r.User = ""
	return r, err
}

func (g *gen) unknownUser() (Request, error) {
	r, err := g.anyRoute(poolOwner)
	r.User = "ghost-" + strconv.Itoa(g.rng.IntN(100_000)) + "@nowhere.example"
	return r, err
}

func (g *gen) badPath() (Request, error) {
	u, ci, err := g.activeUser()
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci].ID
	p := [...]string{
		customerPath(c, "..", "..", "users"),
		"/api/v1/customers//" + c + "/users",
		customerPath(c, "%2e%2e", "vbr-jobs"),
		customerPath(c, "vbr-jobs", "a%2Fb"),
		customerPath(c, "users", "x%00y"),
	}[g.rng.IntN(5)]
	return Request{User: u.ID, Method: g.method(read), Path: p + "?n=" + strconv.Itoa(g.rng.IntN(1000))}, nil
}

func (g *gen) noRoute() (Request, error) {
	u, ci, err := g.activeUser()
	if err != nil {
		return Request{}, err
	}
	c := g.d.Customers[ci].ID
	p := [...]string{
		customerPath(c),
		customerPath(c, "no-such-resource"),
		"/api/v2/customers/" + c + "/users",
		customerPath(c, "computers", "pc-1"),
	}[g.rng.IntN(4)]
	return Request{User: u.ID, Method: g.method(g.access(70)), Path: p}, nil
}

func (g *gen) methodNotAllowed() (Request, error) {
	r, err := g.anyRoute(activePools[g.rng.IntN(len(activePools))])
	r.Method = [...]string{"OPTIONS", "get", "TRACE", "Post"}[g.rng.IntN(4)]
	return r, err
}

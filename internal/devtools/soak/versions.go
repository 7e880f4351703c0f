package soak

import "strings"

// The tenant data the soak flips between. base.yaml never changes;
// tenants.yaml is version A, version B or (every tenth flip) the invalid
// version. A and B are designed so that a fixed request set gets different
// answers under each (locations, roles, a disabled customer and user, a user
// and a customer that exist in one only, scope header values), so an answer
// that mixes the two, or comes from anything else, is caught.
//
// Why zeta is declared last: base.yaml has a user of zeta, so every proper
// prefix of tenants.yaml (what a reader sees while an in-place write is
// under way) fails validation instead of loading a smaller, valid tree. Two
// guards keep a half-written file out of service: settle.Wrap (a read is
// used only if the files stay unchanged for the debounce around it) and
// validation. The soak makes the second one certain, because a writer
// stalled longer than the debounce between its truncate and its write (a
// loaded machine can do that) leaves a state no reader can tell from an
// operator emptying the file on purpose. TestVersionsDesign checks the
// property for every prefix of every version.

const baseYAML = `# soak: the constant part of the tree, merged with tenants.yaml
customers:
  acme:
    type: distributor
  northwind:
    type: reseller
    parent: acme
users:
  owner@acme.example:
    customer: acme
    role: company-owner
  admin@northwind.example:
    customer: northwind
    role: company-administrator
  zoe@zeta.example:
    customer: zeta
    role: company-owner
`

const versionA = `# soak: version A
users:
  alice@contoso.example:
    customer: contoso
    role: company-owner
  bob@contoso.example:
    customer: contoso
    role: company-administrator
    locations: [hq]
  erin@contoso.example:
    customer: contoso
    role: company-user
    locations: [hq, branch-1]
  carol@contoso.example:
    customer: contoso
    role: subtenant-user
    computers: [pc-17]
  ivan@contoso.example:
    customer: contoso
    role: invoice-auditor
  frank@fabrikam.example:
    customer: fabrikam
    role: company-owner
customers:
  contoso:
    parent: northwind
    locations: [hq, branch-1]
    type: end-customer
  contoso-paris:
    parent: contoso
    type: site
  fabrikam:
    parent: northwind
    disabled: true
    type: end-customer
  zeta:
    parent: northwind
    type: end-customer
`

const versionB = `# soak: version B
users:
  alice@contoso.example:
    customer: contoso
    role: company-owner
  bob@contoso.example:
    customer: contoso
    role: company-administrator
    locations: [hq, branch-1]
  erin@contoso.example:
    customer: contoso
    role: company-administrator
  carol@contoso.example:
    customer: contoso
    role: subtenant-user
    computers: [pc-18, pc-17]
  ivan@contoso.example:
    customer: contoso
    role: invoice-auditor
    disabled: true
  frank@fabrikam.example:
    customer: fabrikam
    role: company-owner
  gina@contoso.example:
    customer: contoso
    role: company-user
    locations: [branch-2]
customers:
  contoso:
    parent: northwind
    locations: [hq, branch-1, branch-2]
    type: end-customer
  fabrikam:
    parent: northwind
    type: end-customer
  zeta:
    parent: northwind
    type: end-customer
`

// versionInvalid is B plus hank (valid on its own, and allowed only here)
// plus mallory, a second company-owner of contoso, which fails validation.
// If it were ever served, hank's request would be answered "allowed", which
// neither A nor B gives.
var versionInvalid = strings.Replace(
	strings.Replace(versionB, "# soak: version B", "# soak: an invalid version (two company-owners of contoso)", 1),
	"customers:\n", invalidUsers+"customers:\n", 1)

// invalidUsers are what versionInvalid adds to B.
const invalidUsers = `  hank@contoso.example:
    customer: contoso
    role: invoice-auditor
  mallory@contoso.example:
    customer: contoso
    role: company-owner
`

// request is one request of the fixed set: who, what, and the client
// headers Envoy would pass on.
type request struct {
	name   string
	user   string // "" sends no token
	method string
	path   string
	extra  map[string]string // more request headers (a forged x-tenantgate-* header)
}

// requests is the fixed set. Comments give the A / B answers by design;
// the soak computes the real ones by deciding each request under each
// version, and the test checks that enough of them differ.
var requests = []request{
	{name: "owner reads users", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users"},                                                               // allowed / allowed
	{name: "bob reads branch-1", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs"},                                          // location_forbidden / allowed
	{name: "bob writes branch-1", user: "bob@contoso.example", method: "POST", path: "/api/v1/customers/contoso/locations/branch-1/vbr-jobs"},                                        // location_forbidden / allowed
	{name: "bob scope header", user: "bob@contoso.example", method: "GET", path: "/api/v1/customers/contoso/vbr-jobs"},                                                               // locations hq / branch-1,hq
	{name: "erin reads users", user: "erin@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users"},                                                                 // role_forbids / allowed
	{name: "erin scope header", user: "erin@contoso.example", method: "GET", path: "/api/v1/customers/contoso/summary"},                                                              // locations branch-1,hq / none
	{name: "carol collection", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/protected-computers"},                                                  // computers pc-17 / pc-17,pc-18
	{name: "carol pc-18", user: "carol@contoso.example", method: "GET", path: "/api/v1/customers/contoso/protected-computers/pc-18"},                                                 // computer_forbidden / allowed
	{name: "frank fabrikam", user: "frank@fabrikam.example", method: "GET", path: "/api/v1/customers/fabrikam/users"},                                                                // customer_disabled / allowed
	{name: "gina summary", user: "gina@contoso.example", method: "GET", path: "/api/v1/customers/contoso/summary"},                                                                   // unknown_user / allowed
	{name: "ivan invoices", user: "ivan@contoso.example", method: "GET", path: "/api/v1/customers/contoso/invoices"},                                                                 // allowed / user_disabled
	{name: "alice paris", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso-paris/summary"},                                                             // allowed / outside_tenant
	{name: "owner paris", user: "owner@acme.example", method: "HEAD", path: "/api/v1/customers/contoso-paris/summary"},                                                               // allowed / outside_tenant
	{name: "hank invalid only", user: "hank@contoso.example", method: "GET", path: "/api/v1/customers/contoso/invoices"},                                                             // unknown_user / unknown_user
	{name: "mallory invalid only", user: "mallory@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users"},                                                          // unknown_user / unknown_user
	{name: "zoe zeta", user: "zoe@zeta.example", method: "GET", path: "/api/v1/customers/zeta/users"},                                                                                // allowed / allowed
	{name: "no token", user: "", method: "GET", path: "/api/v1/customers/contoso/users"},                                                                                             // unauthenticated
	{name: "bad path", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/../northwind/users"},                                                           // bad_path
	{name: "owner protection", user: "admin@northwind.example", method: "PUT", path: "/api/v1/customers/contoso/users/alice%40contoso.example"},                                      // role_forbids
	{name: "forged header", user: "alice@contoso.example", method: "GET", path: "/api/v1/customers/contoso/users", extra: map[string]string{"x-tenantgate-locations": "everywhere"}}, // allowed, header removed
	{name: "distributor owner deletes bob", user: "owner@acme.example", method: "DELETE", path: "/api/v1/customers/contoso/users/bob@contoso.example"},                               // allowed / allowed
}

// Package tenant loads, validates and indexes the operators' YAML tenant data
// (tenantgate help data). The result is immutable: a reload builds a new Data.
package tenant

import "github.com/tenantgate/tenantgate/internal/sourcedir"

// Customer types, in rank order (distributor 1 ... site 5).
const (
	TypeDistributor    = "distributor"
	TypeSubDistributor = "sub-distributor"
	TypeReseller       = "reseller"
	TypeEndCustomer    = "end-customer"
	TypeSite           = "site"
)

// Roles.
const (
	RoleCompanyOwner         = "company-owner"
	RoleCompanyAdministrator = "company-administrator"
	RoleCompanyUser          = "company-user"
	RoleSubtenantUser        = "subtenant-user"
	RoleInvoiceAuditor       = "invoice-auditor"
)

// Types lists the customer types in rank order; Rank(t) = index+1.
var Types = []string{TypeDistributor, TypeSubDistributor, TypeReseller, TypeEndCustomer, TypeSite}

// Roles lists the five roles.
var Roles = []string{RoleCompanyOwner, RoleCompanyAdministrator, RoleCompanyUser, RoleSubtenantUser, RoleInvoiceAuditor}

// Customer is one validated customer with its derived index fields.
type Customer struct {
	ID        string
	Name      string
	Type      string
	Parent    string   // "" on a root
	Locations []string // as declared, a repeated location dropped
	Disabled  bool

	// Derived once per load, so a decision does lookups, not walks.
	Rank      int      // 1..5
	Lineage   []string // this customer's id, then its parent's, ... up to the root
	Suspended []string // the disabled customers in Lineage, in Lineage order (usually empty)

	File string // the file that declared it
	Line int    // the line of its key in that file
}

// User is one validated user. Locations and Computers are de-duplicated and
// sorted byte-wise at load, so the scope headers are a plain join.
type User struct {
	ID        string
	Customer  string
	Role      string
	Locations []string
	Computers []string

	File string
	// Line is an int32 beside Disabled so that the two share one word: a
	// million users are 8 MB fewer.
	Line     int32
	Disabled bool
}

// Data is one validated, indexed load of the data directory.
type Data struct {
	Customers map[string]*Customer
	Users     map[string]*User
	Files     []string // the files read, sorted by name
	Digest    string   // hex sha256 over the file names and contents, for the revision

	// Owners lists the company-owners by their id lower-cased (ids are
	// ASCII), in declaration order: owner protection covers every owner
	// whose id equals the path's {id} ignoring case (tenantgate help requests), since
	// an upstream may look ids up case-insensitively.
	Owners map[string][]*User
}

// File is one YAML document to load: a name for error messages and its bytes.
type File = sourcedir.File

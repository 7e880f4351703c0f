# METADATA
# title: tenantgate tables
# description: |
#   The two seed tables of the authorization model, encoded as data, plus the
#   resource catalog that maps each API resource onto a row of each table.
#   Source: /work/shared/seeds/customer-types-and-modules.txt and
#   client-roles-and-permissions.txt, and the catalog of `tenantgate help requests`.
#   The Go side reads data.tenantgate.tables to print the tables and to know
#   the catalog's resource names, so names and shapes here are a contract.
#   Arrays keep the seeds' row and column order so a printout reads like the seed.
package tenantgate.tables

# Columns of the customer-types table, in the seed's order (also the type rank order).
customer_types := [
	{"id": "distributor", "label": "Distributor"},
	{"id": "sub-distributor", "label": "Sub-distributor"},
	{"id": "reseller", "label": "Reseller"},
	{"id": "end-customer", "label": "End-customer"},
	{"id": "site", "label": "Site"},
]

# Rows of the customer-types table, in the seed's order.
modules := [
	{"id": "quick-installation", "label": "Quick Installation and generating passphrases (in Backup > Dashboard)"},
	{"id": "profiles", "label": "Profiles"},
	{"id": "retention-policies", "label": "Retention Policies"},
	{"id": "backup-dashboard", "label": "Backup > Dashboard (all features except for Quick Installation and generating passphrases)"},
	{"id": "customers", "label": "Customers"},
	{"id": "users", "label": "Users"},
	{"id": "downloads", "label": "Downloads"},
	{"id": "historical-charts", "label": "Historical charts"},
	{"id": "scheduled-reports", "label": "Scheduled Reports"},
]

# Every cell of the customer-types table: module -> customer type -> available.
# Every cell is spelled out (no defaults) so that a missing cell reads as
# unavailable rather than silently available.
module_availability := {
	"quick-installation": {"distributor": false, "sub-distributor": false, "reseller": true, "end-customer": true, "site": true},
	"profiles": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
	"retention-policies": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
	"backup-dashboard": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
	"customers": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": false},
	"users": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
	"downloads": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
	"historical-charts": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
	"scheduled-reports": {"distributor": true, "sub-distributor": true, "reseller": true, "end-customer": true, "site": true},
}

# Columns of the roles table, in the seed's order.
roles := [
	{"id": "company-owner", "label": "Company Owner"},
	{"id": "company-administrator", "label": "Company Administrator"},
	{"id": "company-user", "label": "Company User"},
	{"id": "subtenant-user", "label": "Subtenant User"},
	{"id": "invoice-auditor", "label": "Invoice Auditor"},
]

# Rows of the roles table, in the seed's order.
functionalities := [
	{"id": "configuration", "label": "Configuration tasks (locations, portal users, backup policies, alarms, company info)"},
	{"id": "vbr-jobs", "label": "Veeam Backup & Replication jobs"},
	{"id": "agent-jobs", "label": "Veeam backup agent jobs"},
	{"id": "failover-plans", "label": "Failover plans"},
	{"id": "discovery-rules", "label": "Discovery rules"},
	{"id": "managed-computers", "label": "Managed computers"},
	{"id": "invoices", "label": "Invoices"},
	{"id": "backup-reports", "label": "Backup reports"},
	{"id": "summary", "label": "Summary"},
	{"id": "active-alarms", "label": "Active alarms"},
	{"id": "protected-computers", "label": "Protected computers"},
]

# Every cell of the roles table: functionality -> role -> level. The seed's
# "Read*" is read-own (limited to the subtenant's own computers), "N/A" is none.
permissions := {
	"configuration": {"company-owner": "full", "company-administrator": "full", "company-user": "none", "subtenant-user": "none", "invoice-auditor": "none"},
	"vbr-jobs": {"company-owner": "full", "company-administrator": "full", "company-user": "full", "subtenant-user": "none", "invoice-auditor": "none"},
	"agent-jobs": {"company-owner": "full", "company-administrator": "full", "company-user": "read", "subtenant-user": "read-own", "invoice-auditor": "none"},
	"failover-plans": {"company-owner": "full", "company-administrator": "full", "company-user": "read", "subtenant-user": "none", "invoice-auditor": "none"},
	"discovery-rules": {"company-owner": "full", "company-administrator": "full", "company-user": "none", "subtenant-user": "none", "invoice-auditor": "none"},
	"managed-computers": {"company-owner": "full", "company-administrator": "full", "company-user": "read", "subtenant-user": "none", "invoice-auditor": "none"},
	"invoices": {"company-owner": "read", "company-administrator": "none", "company-user": "none", "subtenant-user": "none", "invoice-auditor": "read"},
	"backup-reports": {"company-owner": "full", "company-administrator": "full", "company-user": "read", "subtenant-user": "none", "invoice-auditor": "none"},
	"summary": {"company-owner": "read", "company-administrator": "read", "company-user": "read", "subtenant-user": "read-own", "invoice-auditor": "none"},
	"active-alarms": {"company-owner": "full", "company-administrator": "full", "company-user": "read", "subtenant-user": "read-own", "invoice-auditor": "none"},
	"protected-computers": {"company-owner": "read", "company-administrator": "read", "company-user": "read", "subtenant-user": "read-own", "invoice-auditor": "none"},
}

# How the seeds print each level and each availability (for `tenantgate tables`).
level_labels := {"full": "Full", "read": "Read", "read-own": "Read*", "none": "N/A"}

availability_labels := {"available": "Available", "unavailable": "Unavailable"}

# The accesses each level covers. read-own covers read only; its narrowing to
# the user's computers is the computer scope of the decision, not a grant.
level_grants := {
	"full": {"read", "full"},
	"read": {"read"},
	"read-own": {"read"},
	"none": set(),
}

# The access each method asks for. Keys are case-sensitive on purpose: "get"
# is not a method the portal API uses, so it is denied rather than guessed at.
method_access := {
	"GET": "read",
	"HEAD": "read",
	"POST": "full",
	"PUT": "full",
	"PATCH": "full",
	"DELETE": "full",
}

# The resource catalog (tenantgate help requests): resource -> the roles-table row
# (functionality) and the customer-types-table row (module). A resource with
# no module has no "module" key. id_is_computer marks resources whose {id} is
# a computer id and so counts as a computer qualifier.
catalog := {
	"company-info": {"functionality": "configuration"},
	"locations": {"functionality": "configuration"},
	"alarm-settings": {"functionality": "configuration"},
	"users": {"functionality": "configuration", "module": "users"},
	"customers": {"functionality": "configuration", "module": "customers"},
	"backup-policies": {"functionality": "configuration", "module": "profiles"},
	"profiles": {"functionality": "configuration", "module": "profiles"},
	"retention-policies": {"functionality": "configuration", "module": "retention-policies"},
	"quick-installation": {"functionality": "managed-computers", "module": "quick-installation"},
	"passphrases": {"functionality": "managed-computers", "module": "quick-installation"},
	"downloads": {"functionality": "managed-computers", "module": "downloads"},
	"vbr-jobs": {"functionality": "vbr-jobs", "module": "backup-dashboard"},
	"agent-jobs": {"functionality": "agent-jobs", "module": "backup-dashboard"},
	"failover-plans": {"functionality": "failover-plans", "module": "backup-dashboard"},
	"discovery-rules": {"functionality": "discovery-rules", "module": "backup-dashboard"},
	"managed-computers": {"functionality": "managed-computers", "module": "backup-dashboard", "id_is_computer": true},
	"summary": {"functionality": "summary", "module": "backup-dashboard"},
	"active-alarms": {"functionality": "active-alarms", "module": "backup-dashboard"},
	"protected-computers": {"functionality": "protected-computers", "module": "backup-dashboard", "id_is_computer": true},
	"invoices": {"functionality": "invoices"},
	"backup-reports": {"functionality": "backup-reports"},
	"historical-charts": {"functionality": "backup-reports", "module": "historical-charts"},
	"scheduled-reports": {"functionality": "backup-reports", "module": "scheduled-reports"},
}

# Deny statuses that are not 403 (tenantgate help requests); every other reason is 403.
statuses := {"bad_path": 400, "unauthenticated": 401, "internal_error": 503}

# METADATA
# title: tenantgate tables tests
# description: |
#   Every cell of both seed tables, written out below as the seeds print them,
#   is checked twice: in the encoded table, and through the decision for the
#   catalog resources of that row (fixtures from tenantgate.authz_test).
#   The catalog is checked against the contract's table (tenantgate help requests), written out the same way.
package tenantgate.tables_test

import data.tenantgate.authz_test
import data.tenantgate.tables

# ---------------------------------------------------------------------------
# The seeds, as printed: columns in seed order, cells as seed words.

type_columns := ["distributor", "sub-distributor", "reseller", "end-customer", "site"]

role_columns := ["company-owner", "company-administrator", "company-user", "subtenant-user", "invoice-auditor"]

seed_availability := {"Available": true, "Unavailable": false}

seed_level := {"Full": "full", "Read": "read", "Read*": "read-own", "N/A": "none"}

# The contract's resource catalog (tenantgate help requests): resource, functionality, module.
spec_catalog := [
	["company-info", "configuration", "(none)"],
	["locations", "configuration", "(none)"],
	["alarm-settings", "configuration", "(none)"],
	["users", "configuration", "users"],
	["customers", "configuration", "customers"],
	["backup-policies", "configuration", "profiles"],
	["profiles", "configuration", "profiles"],
	["retention-policies", "configuration", "retention-policies"],
	["quick-installation", "managed-computers", "quick-installation"],
	["passphrases", "managed-computers", "quick-installation"],
	["downloads", "managed-computers", "downloads"],
	["vbr-jobs", "vbr-jobs", "backup-dashboard"],
	["agent-jobs", "agent-jobs", "backup-dashboard"],
	["failover-plans", "failover-plans", "backup-dashboard"],
	["discovery-rules", "discovery-rules", "backup-dashboard"],
	["managed-computers", "managed-computers", "backup-dashboard"],
	["summary", "summary", "backup-dashboard"],
	["active-alarms", "active-alarms", "backup-dashboard"],
	["protected-computers", "protected-computers", "backup-dashboard"],
	["invoices", "invoices", "(none)"],
	["backup-reports", "backup-reports", "(none)"],
	["historical-charts", "backup-reports", "historical-charts"],
	["scheduled-reports", "backup-reports", "scheduled-reports"],
]

# Per tenantgate help requests, only these resources' {id} is a computer id.
spec_computer_id_resources := {"protected-computers", "managed-computers"}

module_resources[module] contains resource if {
	some [resource, _, module] in spec_catalog
	module != "(none)"
}

functionality_resources[functionality] contains resource if {
	some [resource, functionality, _] in spec_catalog
}

# ---------------------------------------------------------------------------
# Customer-types table: one test per row; a row holds when every cell is in
# the table and a GET by the owner of a customer of that type, on each
# resource of the module, is allowed exactly where the cell says Available.

module_row_holds(module, row) if {
	count(row) == count(type_columns)
	count(tables.module_availability[module]) == count(type_columns)
	every i, type in type_columns {
		module_cell_holds(module, type, seed_availability[row[i]])
	}
}

module_cell_holds(module, type, available) if {
	tables.module_availability[module][type] == available
	want := {true: "allowed", false: "module_unavailable"}[available]
	owner := authz_test.owner_of_type[type]
	customer := authz_test.people[owner].customer
	count(module_resources[module]) > 0
	every resource in module_resources[module] {
		authz_test.reason_for(authz_test.request(owner, "GET", authz_test.route_to(customer, resource))) == want
	}
}

test_module_availability_quick_installation if {
	module_row_holds("quick-installation", ["Unavailable", "Unavailable", "Available", "Available", "Available"])
}

test_module_availability_profiles if {
	module_row_holds("profiles", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_retention_policies if {
	module_row_holds("retention-policies", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_backup_dashboard if {
	module_row_holds("backup-dashboard", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_customers if {
	module_row_holds("customers", ["Available", "Available", "Available", "Available", "Unavailable"])
}

test_module_availability_users if {
	module_row_holds("users", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_downloads if {
	module_row_holds("downloads", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_historical_charts if {
	module_row_holds("historical-charts", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_scheduled_reports if {
	module_row_holds("scheduled-reports", ["Available", "Available", "Available", "Available", "Available"])
}

test_module_availability_only_seed_cells if {
	object.keys(tables.module_availability) == {m.id | some m in tables.modules}
	every row in tables.module_availability {
		object.keys(row) == {t | some t in type_columns}
		every cell in row {
			is_boolean(cell)
		}
	}
}

# The helper must reject a wrong cell, or the row tests above prove nothing.
test_module_availability_wrong_cell_is_caught if {
	not module_row_holds("customers", ["Available", "Available", "Available", "Available", "Available"])
	not module_row_holds("quick-installation", ["Available", "Unavailable", "Available", "Available", "Available"])
	not module_row_holds("profiles", ["Available", "Available", "Available", "Available"])
	not module_row_holds("profiles", ["Available", "Available", "Available", "Available", "Yes"])
}

# ---------------------------------------------------------------------------
# Roles table: one test per row; a row holds when every cell is in the table
# and, for each resource of the functionality, a GET (read) and a POST (write)
# by a contoso user of that role at contoso get what the level says.

level_outcomes := {
	"full": {"GET": "allowed", "POST": "allowed"},
	"read": {"GET": "allowed", "POST": "role_forbids"},
	"read-own": {"GET": "allowed", "POST": "role_forbids"},
	"none": {"GET": "role_forbids", "POST": "role_forbids"},
}

permission_row_holds(functionality, row) if {
	count(row) == count(role_columns)
	count(tables.permissions[functionality]) == count(role_columns)
	every i, role in role_columns {
		permission_cell_holds(functionality, role, seed_level[row[i]])
	}
}

permission_cell_holds(functionality, role, level) if {
	tables.permissions[functionality][role] == level
	user := authz_test.user_of_role[role]
	count(functionality_resources[functionality]) > 0
	every resource in functionality_resources[functionality] {
		every method, want in level_outcomes[level] {
			authz_test.reason_for(authz_test.request(user, method, authz_test.route_to("contoso", resource))) == want
		}
	}
}

test_permissions_configuration if {
	permission_row_holds("configuration", ["Full", "Full", "N/A", "N/A", "N/A"])
}

test_permissions_vbr_jobs if {
	permission_row_holds("vbr-jobs", ["Full", "Full", "Full", "N/A", "N/A"])
}

test_permissions_agent_jobs if {
	permission_row_holds("agent-jobs", ["Full", "Full", "Read", "Read*", "N/A"])
}

test_permissions_failover_plans if {
	permission_row_holds("failover-plans", ["Full", "Full", "Read", "N/A", "N/A"])
}

test_permissions_discovery_rules if {
	permission_row_holds("discovery-rules", ["Full", "Full", "N/A", "N/A", "N/A"])
}

test_permissions_managed_computers if {
	permission_row_holds("managed-computers", ["Full", "Full", "Read", "N/A", "N/A"])
}

test_permissions_invoices if {
	permission_row_holds("invoices", ["Read", "N/A", "N/A", "N/A", "Read"])
}

test_permissions_backup_reports if {
	permission_row_holds("backup-reports", ["Full", "Full", "Read", "N/A", "N/A"])
}

test_permissions_summary if {
	permission_row_holds("summary", ["Read", "Read", "Read", "Read*", "N/A"])
}

test_permissions_active_alarms if {
	permission_row_holds("active-alarms", ["Full", "Full", "Read", "Read*", "N/A"])
}

test_permissions_protected_computers if {
	permission_row_holds("protected-computers", ["Read", "Read", "Read", "Read*", "N/A"])
}

test_permissions_only_seed_cells if {
	object.keys(tables.permissions) == {f.id | some f in tables.functionalities}
	every row in tables.permissions {
		object.keys(row) == {r | some r in role_columns}
		every level in row {
			tables.level_grants[level]
		}
	}
}

test_permissions_wrong_cell_is_caught if {
	not permission_row_holds("invoices", ["Read", "Read", "N/A", "N/A", "Read"])
	not permission_row_holds("summary", ["Read", "Read", "Read", "Read", "N/A"])
	not permission_row_holds("agent-jobs", ["Full", "Full", "Full", "Read*", "N/A"])
	not permission_row_holds("vbr-jobs", ["Full", "Full", "Full", "N/A"])
}

# ---------------------------------------------------------------------------
# The other tables.

test_customer_types_seed_columns if {
	tables.customer_types == [
		{"id": "distributor", "label": "Distributor"},
		{"id": "sub-distributor", "label": "Sub-distributor"},
		{"id": "reseller", "label": "Reseller"},
		{"id": "end-customer", "label": "End-customer"},
		{"id": "site", "label": "Site"},
	]
}

test_modules_seed_rows if {
	[m.id | some m in tables.modules] == [
		"quick-installation", "profiles", "retention-policies", "backup-dashboard", "customers",
		"users", "downloads", "historical-charts", "scheduled-reports",
	]
	tables.modules[0].label == "Quick Installation and generating passphrases (in Backup > Dashboard)"
	tables.modules[3].label == "Backup > Dashboard (all features except for Quick Installation and generating passphrases)"
	[m.label | some m in tables.modules; m.id in {"profiles", "retention-policies", "customers"}] == [
		"Profiles", "Retention Policies", "Customers",
	]
}

test_roles_seed_columns if {
	tables.roles == [
		{"id": "company-owner", "label": "Company Owner"},
		{"id": "company-administrator", "label": "Company Administrator"},
		{"id": "company-user", "label": "Company User"},
		{"id": "subtenant-user", "label": "Subtenant User"},
		{"id": "invoice-auditor", "label": "Invoice Auditor"},
	]
}

test_functionalities_seed_rows if {
	[f.id | some f in tables.functionalities] == [
		"configuration", "vbr-jobs", "agent-jobs", "failover-plans", "discovery-rules", "managed-computers",
		"invoices", "backup-reports", "summary", "active-alarms", "protected-computers",
	]
	tables.functionalities[0].label == "Configuration tasks (locations, portal users, backup policies, alarms, company info)"
	tables.functionalities[1].label == "Veeam Backup & Replication jobs"
	tables.functionalities[2].label == "Veeam backup agent jobs"
}

test_catalog_matches_spec if {
	count(tables.catalog) == count(spec_catalog)
	every row in spec_catalog {
		tables.catalog[row[0]] == catalog_entry_for(row[0], row[1], row[2])
	}
}

catalog_entry_for(resource, functionality, "(none)") := {"functionality": functionality} if {
	not resource in spec_computer_id_resources
}

catalog_entry_for(resource, functionality, module) := {"functionality": functionality, "module": module} if {
	module != "(none)"
	not resource in spec_computer_id_resources
}

catalog_entry_for(resource, functionality, module) := {
	"functionality": functionality,
	"module": module,
	"id_is_computer": true,
} if {
	resource in spec_computer_id_resources
}

test_catalog_rows_exist_in_tables if {
	every entry in tables.catalog {
		tables.permissions[entry.functionality]
		object.get(entry, "module", "users") in object.keys(tables.module_availability)
	}
}

test_level_labels_seed_words if {
	tables.level_labels == {"full": "Full", "read": "Read", "read-own": "Read*", "none": "N/A"}
	every word, level in seed_level {
		tables.level_labels[level] == word
	}
}

test_availability_labels_seed_words if {
	tables.availability_labels == {"available": "Available", "unavailable": "Unavailable"}
}

test_level_grants_accesses if {
	# Compared key by key: the type checker cannot match an empty set literal
	# against the table's statically typed empty set.
	object.keys(tables.level_grants) == {"full", "read", "read-own", "none"}
	tables.level_grants.full == {"read", "full"}
	tables.level_grants.read == {"read"}
	tables.level_grants["read-own"] == {"read"}
	is_set(tables.level_grants.none)
	count(tables.level_grants.none) == 0
}

test_method_access_six_methods if {
	tables.method_access == {
		"GET": "read", "HEAD": "read",
		"POST": "full", "PUT": "full", "PATCH": "full", "DELETE": "full",
	}
}

test_statuses_non_403 if {
	tables.statuses == {"bad_path": 400, "unauthenticated": 401, "internal_error": 503}
}

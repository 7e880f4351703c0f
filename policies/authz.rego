# METADATA
# title: tenantgate authorization
# description: |
#   Decides whether a user may do this (method) to that tenant (target customer
#   and resource), per tenantgate help requests. Go builds the input (path checks, JWT,
#   tenant lookups) and evaluates only data.tenantgate.authz.decision; this
#   package does lookups against data.tenantgate.tables, never walks the tree.
#   Every helper treats an absent or ill-typed field as a failure, so a partial
#   input denies and never errors.
package tenantgate.authz

import data.tenantgate.tables

# METADATA
# title: Decision
# description: |
#   The one answer Go reads: {"allowed", "status", "reason", "headers"}.
#   The default is the fail-closed 503 internal_error, so anything that leaves
#   the computed decision undefined (e.g. a header value that cannot be built)
#   denies and is retryable rather than allowed.
# entrypoint: true
default decision := {
	"allowed": false,
	"status": 503,
	"reason": "internal_error",
	"headers": {"x-tenantgate-reason": "internal_error"},
}

decision := {
	"allowed": true,
	"status": 200,
	"reason": "allowed",
	"headers": allow_headers,
} if {
	reason == "allowed"
}

decision := {
	"allowed": false,
	"status": deny_status,
	"reason": reason,
	"headers": deny_headers,
} if {
	reason != "allowed"
}

# The checks of tenantgate help requests, in its order: the first failure wins. The
# owner protection row shares role_forbids but comes after the role check; the
# scope rows hold their users to their own customer, so their outside_tenant
# comes after module, role and owner protection, not at row 7.
reason := "bad_path" if {
	not path_is_valid
} else := "unauthenticated" if {
	not request_is_authenticated
} else := "unknown_user" if {
	not user_is_known
} else := "user_disabled" if {
	not user_is_enabled
} else := "customer_disabled" if {
	not customer_chain_is_active
} else := "method_not_allowed" if {
	not method_is_allowed
} else := "no_route" if {
	not route_is_in_catalog
} else := "outside_tenant" if {
	not target_is_within_tenant
} else := "module_unavailable" if {
	not module_is_available_to_target
} else := "role_forbids" if {
	not role_level_covers_access
} else := "role_forbids" if {
	owner_protection_forbids
} else := "outside_tenant" if {
	location_scope_leaves_own_customer
} else := "location_forbidden" if {
	not location_scope_allows
} else := "outside_tenant" if {
	computer_scope_leaves_own_customer
} else := "computer_forbidden" if {
	not computer_scope_allows
} else := "allowed"

# explain_order (at the end of this file) lists these rows for `tenantgate
# explain`: a row added to, removed from or moved in the chain above must be
# changed there too (test_explain_first_failing_row_is_the_reason checks the
# two agree, and explain itself reports any disagreement).

deny_status := object.get(tables.statuses, reason, 403)

deny_headers := {"x-tenantgate-reason": reason, "www-authenticate": "Bearer"} if {
	deny_status == 401
} else := {"x-tenantgate-reason": reason}

allow_headers := object.union_n([identity_headers, location_headers, computer_headers])

identity_headers := {
	"x-tenantgate-user": input.user.id,
	"x-tenantgate-role": input.user.role,
	"x-tenantgate-customer": input.route.customer,
}

# Scope headers tell the upstream to filter a collection read that the scope
# did not narrow; a request narrowed by a qualifier carries none. Whether a
# header is due is decided apart from building its value, so a due header that
# cannot be built (an ill-typed list) leaves the allow undefined, and the
# default decision denies, instead of allowing without the header.
location_headers := {"x-tenantgate-locations": concat(",", user_locations)} if {
	location_header_is_due
}

location_headers := {} if not location_header_is_due

location_header_is_due if {
	user_is_limited_to_locations
	route_names_no_location
}

computer_headers := {"x-tenantgate-computers": concat(",", user_computers)} if {
	computer_header_is_due
}

computer_headers := {} if not computer_header_is_due

computer_header_is_due if {
	level_is_read_own
	count(computer_qualifiers) == 0
}

# Lookups shared by the checks. Each is undefined when its input is absent,
# and every check below is written so that undefined denies.

access := tables.method_access[input.method]

catalog_entry := tables.catalog[input.route.resource]

level := tables.permissions[catalog_entry.functionality][input.user.role]

# The user's scope lists, only as arrays: membership in an object would test
# its values, so any other shape matches nothing (and a due scope header
# cannot be built from it, so the default decision denies).
user_locations := input.user.locations if is_array(input.user.locations)

user_computers := input.user.computers if is_array(input.user.computers)

# The target only counts when it is the customer the route names; Go sets it
# only then, and this keeps a mismatched input from widening the tenant.
target := input.target if {
	input.target.id == input.route.customer
}

# Row 1: the path passed the section-4 checks.
path_is_valid if input.path.valid == true

# Row 2: a valid bearer JWT with a non-empty subject.
request_is_authenticated if {
	is_string(input.subject)
	input.subject != ""
}

# Row 3: the subject is a known user. Comparing ids guards against an input
# whose user is not the token's subject.
user_is_known if {
	is_object(input.user)
	input.user.id == input.subject
}

# Only an explicit false enables: an absent flag is unknown, so it denies.
user_is_enabled if input.user.disabled == false

# Row 4: no customer in the user's own chain is disabled. An absent list (or
# an absent customer) is unknown and denies.
customer_chain_is_active if input.user.customer.suspended == []

# Row 5: one of the six methods, case-sensitive.
method_is_allowed if access

# Row 6: the path matched the grammar with a catalog resource.
route_is_in_catalog if catalog_entry

# Row 7: the target is the user's customer or below it. Location-limited and
# read-own users are further held to their own customer, but by the scope
# rows (11 and 12), in their place.
target_is_within_tenant if input.user.customer.id in target.lineage

target_is_user_customer if target.id == input.user.customer.id

# Row 8: the module, if any, is available to the target's type (not the
# user's): a distributor's owner may use quick installation at a reseller.
module_is_available_to_target if resource_has_no_module

module_is_available_to_target if {
	tables.module_availability[catalog_entry.module][target.type] == true
}

resource_has_no_module if {
	entry := catalog_entry
	not entry.module
}

# Row 9: the role's level on the resource's functionality covers the access.
role_level_covers_access if access in tables.level_grants[level]

level_is_read_own if level == "read-own"

# Row 10: a write to users/{id} naming a company-owner needs a company-owner
# at or above that owner's customer, for every owner it names: Go lists in
# named_owners each company-owner whose id equals {id} ignoring ASCII case
# (an upstream may look ids up case-insensitively). The exactly named user
# counts too unless its role is a known non-owner role, so a malformed input
# fails closed.
owner_protection_forbids if {
	write_names_a_user
	some owner in protected_owners
	not requester_may_manage(owner)
}

write_names_a_user if {
	access == "full"
	input.route.resource == "users"
	input.route.id
}

protected_owners contains owner if {
	some owner in input.named_owners
}

protected_owners contains input.named_user if {
	input.named_user
	named_user_may_be_an_owner
}

# Written as a negated rule, not `not x in s`: a negated membership test whose
# left side is undefined is itself undefined in OPA, which would let a named
# user without a role slip past the protection.
named_user_may_be_an_owner if not named_user_is_known_non_owner

named_user_is_known_non_owner if input.named_user.role in non_owner_roles

non_owner_roles contains role.id if {
	some role in tables.roles
	role.id != "company-owner"
}

requester_may_manage(owner) if {
	input.user.role == "company-owner"
	input.user.customer.id in owner.customer.lineage
}

# Row 11: location scope. Locations absent or [] mean no limit; anything else
# (even an ill-typed value) limits, and then fails the membership tests. A
# limited user's target must be its own customer (else outside_tenant).
location_scope_leaves_own_customer if {
	user_is_limited_to_locations
	not target_is_user_customer
}

user_is_limited_to_locations if not user_has_no_location_limit

user_has_no_location_limit if not input.user.locations

user_has_no_location_limit if input.user.locations == []

location_scope_allows if not user_is_limited_to_locations

# Every location qualifier (input.route.locations: a locations/{l} and the
# {id} of the locations resource) must be one of the user's locations. A
# value that is not an array is no list of the user's locations: it denies.
location_scope_allows if {
	user_is_limited_to_locations
	not route_names_no_location
	is_array(input.route.locations)
	every location in input.route.locations {
		location in user_locations
	}
}

# A read without a qualifier is allowed and carries x-tenantgate-locations;
# a write must name one of the user's locations.
location_scope_allows if {
	user_is_limited_to_locations
	route_names_no_location
	access == "read"
}

route_names_no_location if not input.route.locations

route_names_no_location if input.route.locations == []

# Row 12: computer scope, for a read-own level only; the target must be the
# user's own customer (else outside_tenant).
computer_scope_leaves_own_customer if {
	level_is_read_own
	not target_is_user_customer
}

computer_scope_allows if not level_is_read_own

computer_scope_allows if {
	level_is_read_own
	count(computer_qualifiers) > 0
	every computer in computer_qualifiers {
		computer in user_computers
	}
}

# A collection read (no qualifier, no id) is allowed when the user has at
# least one computer, and carries x-tenantgate-computers. An {id} that is not
# a computer (e.g. summary/{id}) cannot be checked against the user's
# computers, so it is denied.
computer_scope_allows if {
	level_is_read_own
	count(computer_qualifiers) == 0
	not input.route.id
	access == "read"
	user_has_computers
}

user_has_computers if {
	some _ in user_computers
}

computer_qualifiers contains input.route.computer if {
	input.route.computer
}

computer_qualifiers contains input.route.id if {
	catalog_entry.id_is_computer == true
	input.route.id
}

# ---------------------------------------------------------------------------
# Explain: evaluated only by `tenantgate explain` and the admin /v1/explain,
# never on the serving path (Go prepares only decision for that). The rows
# name the very rules the reason chain tests, so an edit to a check shows in
# explain with no Go change.

# METADATA
# title: Explain
# description: |
#   Every row of the decision order for this input, each with its result
#   (pass, fail or not_reached: the first failure wins, so the rows after it
#   are not reached), the facts the rows read, and the decision itself.
# entrypoint: true
explain := {
	"rows": explain_rows,
	"facts": explain_facts,
	"decision": decision,
}

# The reason chain's rows in its order: the row of spec section 3, the rule
# that must hold for the request to pass it (a "not " rule must not hold),
# what it checks and the reason it denies with.
explain_order := [
	{"row": 1, "rule": "path_is_valid", "check": "the path passes the path checks", "reason": "bad_path"},
	{"row": 2, "rule": "request_is_authenticated", "check": "a valid bearer JWT with a subject", "reason": "unauthenticated"},
	{"row": 3, "rule": "user_is_known", "check": "the subject is a known user", "reason": "unknown_user"},
	{"row": 3, "rule": "user_is_enabled", "check": "the user is not disabled", "reason": "user_disabled"},
	{"row": 4, "rule": "customer_chain_is_active", "check": "no customer in the user's chain is disabled", "reason": "customer_disabled"},
	{"row": 5, "rule": "method_is_allowed", "check": "the method is one of the six", "reason": "method_not_allowed"},
	{"row": 6, "rule": "route_is_in_catalog", "check": "the path matches the grammar and the catalog", "reason": "no_route"},
	{"row": 7, "rule": "target_is_within_tenant", "check": "the target is the user's customer or below it", "reason": "outside_tenant"},
	{"row": 8, "rule": "module_is_available_to_target", "check": "the resource's module is available to the target's type", "reason": "module_unavailable"},
	{"row": 9, "rule": "role_level_covers_access", "check": "the role's level on the functionality covers the access asked", "reason": "role_forbids"},
	{"row": 10, "rule": "not owner_protection_forbids", "check": "owner protection: a write naming a company-owner comes from an owner at or above it", "reason": "role_forbids"},
	{"row": 11, "rule": "not location_scope_leaves_own_customer", "check": "location scope: a location-limited user stays in its own customer", "reason": "outside_tenant"},
	{"row": 11, "rule": "location_scope_allows", "check": "location scope: every location qualifier is the user's; a write names one", "reason": "location_forbidden"},
	{"row": 12, "rule": "not computer_scope_leaves_own_customer", "check": "computer scope: a read-own user stays in its own customer", "reason": "outside_tenant"},
	{"row": 12, "rule": "computer_scope_allows", "check": "computer scope: every computer qualifier is the user's; a collection read needs one", "reason": "computer_forbidden"},
]

# The rules of explain_order that hold for this input.
explain_holding contains "path_is_valid" if path_is_valid

explain_holding contains "request_is_authenticated" if request_is_authenticated

explain_holding contains "user_is_known" if user_is_known

explain_holding contains "user_is_enabled" if user_is_enabled

explain_holding contains "customer_chain_is_active" if customer_chain_is_active

explain_holding contains "method_is_allowed" if method_is_allowed

explain_holding contains "route_is_in_catalog" if route_is_in_catalog

explain_holding contains "target_is_within_tenant" if target_is_within_tenant

explain_holding contains "module_is_available_to_target" if module_is_available_to_target

explain_holding contains "role_level_covers_access" if role_level_covers_access

explain_holding contains "not owner_protection_forbids" if not owner_protection_forbids

explain_holding contains "not location_scope_leaves_own_customer" if not location_scope_leaves_own_customer

explain_holding contains "location_scope_allows" if location_scope_allows

explain_holding contains "not computer_scope_leaves_own_customer" if not computer_scope_leaves_own_customer

explain_holding contains "computer_scope_allows" if computer_scope_allows

# The index of the first row that fails; undefined when every row passes.
explain_first_failure := min({i |
	some i, row in explain_order
	not row.rule in explain_holding
})

explain_rows := [object.union(row, {"result": explain_result(i, row)}) | some i, row in explain_order]

explain_result(i, _) := "not_reached" if {
	i > explain_first_failure
} else := "pass" if {
	explain_order[i].rule in explain_holding
} else := "fail"

# The facts the rows read, each present only where the input gives it.
explain_facts["method"] := input.method

explain_facts["access"] := access

explain_facts["path_valid"] := input.path.valid

explain_facts["subject"] := input.subject

explain_facts["route"] := input.route

explain_facts["location_qualifiers"] := input.route.locations

explain_facts["computer_qualifiers"] := computer_qualifiers if count(computer_qualifiers) > 0

explain_facts["user"] := object.filter(input.user, ["id", "role", "disabled", "locations", "computers"])

explain_facts["user_customer"] := input.user.customer.id

explain_facts["user_chain"] := input.user.customer.lineage

explain_facts["disabled_in_chain"] := input.user.customer.suspended

explain_facts["target"] := target

explain_facts["functionality"] := catalog_entry.functionality

explain_facts["module"] := catalog_entry.module

explain_facts["module"] := "none" if resource_has_no_module

explain_facts["module_available"] := tables.module_availability[catalog_entry.module][target.type]

explain_facts["level"] := level

explain_facts["level_grants"] := tables.level_grants[level]

explain_facts["owner_protection"] := {"subject": input.route.id, "owners": {o |
	some owner in protected_owners
	o := {"id": owner.id, "customer": owner.customer.id, "requester_may_manage": owner in explain_manageable_owners}
}} if {
	write_names_a_user
}

explain_manageable_owners contains owner if {
	some owner in protected_owners
	requester_may_manage(owner)
}

explain_facts["location_limited"] := user_is_limited_to_locations

explain_facts["read_own"] := level_is_read_own

explain_facts["scope_headers_due"] := explain_due_headers if count(explain_due_headers) > 0

explain_due_headers contains "x-tenantgate-locations" if location_header_is_due

explain_due_headers contains "x-tenantgate-computers" if computer_header_is_due

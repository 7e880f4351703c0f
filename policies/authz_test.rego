# METADATA
# title: tenantgate authorization tests
# description: |
#   One or more tests per row of tenantgate help requests, the ordering between rows,
#   the exact allow and deny documents, and robustness against partial input.
#   The fixtures below (a small customer tree and its users) are shared with
#   tenantgate.tables_test, which drives every seed cell through the decision.
package tenantgate.authz_test

import data.tenantgate.authz

# ---------------------------------------------------------------------------
# Fixtures: acme > umbrella > northwind > contoso > contoso-paris, plus
# fabrikam, a sibling of contoso under northwind. One customer of each type.

customer_types := {
	"acme": "distributor",
	"umbrella": "sub-distributor",
	"northwind": "reseller",
	"contoso": "end-customer",
	"fabrikam": "end-customer",
	"contoso-paris": "site",
}

lineages := {
	"acme": ["acme"],
	"umbrella": ["umbrella", "acme"],
	"northwind": ["northwind", "umbrella", "acme"],
	"contoso": ["contoso", "northwind", "umbrella", "acme"],
	"fabrikam": ["fabrikam", "northwind", "umbrella", "acme"],
	"contoso-paris": ["contoso-paris", "contoso", "northwind", "umbrella", "acme"],
}

people := {
	"ann@acme.example": {"customer": "acme", "role": "company-owner"},
	"sam@umbrella.example": {"customer": "umbrella", "role": "company-owner"},
	"nora@northwind.example": {"customer": "northwind", "role": "company-owner"},
	"alice@contoso.example": {"customer": "contoso", "role": "company-owner"},
	"fay@fabrikam.example": {"customer": "fabrikam", "role": "company-owner"},
	"pia@contoso-paris.example": {"customer": "contoso-paris", "role": "company-owner"},
	"adam@contoso.example": {"customer": "contoso", "role": "company-administrator"},
	"bob@contoso.example": {"customer": "contoso", "role": "company-administrator", "locations": ["branch-1", "hq"]},
	"erin@contoso.example": {"customer": "contoso", "role": "company-user"},
	"carol@contoso.example": {"customer": "contoso", "role": "subtenant-user", "computers": ["pc-17", "pc-18"]},
	"tom@contoso.example": {"customer": "contoso", "role": "subtenant-user"},
	"ivan@contoso.example": {"customer": "contoso", "role": "invoice-auditor"},
}

# The owner of the fixture customer of each type (for module cells).
owner_of_type := {
	"distributor": "ann@acme.example",
	"sub-distributor": "sam@umbrella.example",
	"reseller": "nora@northwind.example",
	"end-customer": "alice@contoso.example",
	"site": "pia@contoso-paris.example",
}

# A contoso user of each role (for role cells); carol has computers so that
# a read-own collection read is allowed.
user_of_role := {
	"company-owner": "alice@contoso.example",
	"company-administrator": "adam@contoso.example",
	"company-user": "erin@contoso.example",
	"subtenant-user": "carol@contoso.example",
	"invoice-auditor": "ivan@contoso.example",
}

customer_doc(id) := {"id": id, "lineage": lineages[id]}

# input.user as Go builds it for a fixture person.
user_doc(id) := object.union(
	{
		"id": id,
		"role": people[id].role,
		"disabled": false,
		"customer": object.union(customer_doc(people[id].customer), {"suspended": []}),
	},
	object.filter(people[id], ["locations", "computers"]),
)

# Routes: route_to, then narrowed with with_id / in_location / on_computer.
route_to(customer, resource) := {"customer": customer, "resource": resource}

with_id(route, id) := object.union(route, {"id": id})

# A location qualifier: Go lists every one in route.locations, in path order.
in_location(route, location) := object.union(route, {"locations": array.concat(object.get(route, "locations", []), [location])})

# locations/{id}: the id of the locations resource is a location qualifier.
location_item(route, id) := in_location(with_id(route, id), id)

on_computer(route, computer) := object.union(route, {"computer": computer})

# A full input, as Go builds it: target only for a known customer, named_user
# only when the route's id is a known user.
request(subject, method, route) := object.union_n([
	{"method": method, "path": {"valid": true}, "subject": subject, "user": user_doc(subject), "route": route},
	target_part(route.customer),
	named_user_part(route),
	named_owners_part(route),
])

target_part(customer) := {"target": object.union(customer_doc(customer), {"type": customer_types[customer]})} if {
	customer_types[customer]
} else := {}

named_user_part(route) := {"named_user": {
	"id": route.id,
	"role": people[route.id].role,
	"customer": customer_doc(people[route.id].customer),
}} if {
	people[route.id]
} else := {}

# named_owners: every company-owner whose id equals a users {id} ignoring
# case, absent when none (as Go builds it).
named_owners_part(route) := {"named_owners": owners} if {
	route.resource == "users"
	owners := [{"id": id, "customer": customer_doc(p.customer)} |
		some id, p in people
		p.role == "company-owner"
		lower(id) == lower(route.id)
	]
	count(owners) > 0
} else := {}

decision_for(doc) := d if {
	d := authz.decision with input as doc
}

reason_for(doc) := decision_for(doc).reason

headers_for(doc) := decision_for(doc).headers

denied(reason, status) := {
	"allowed": false,
	"status": status,
	"reason": reason,
	"headers": {"x-tenantgate-reason": reason},
}

allowed(subject, customer, extra_headers) := {
	"allowed": true,
	"status": 200,
	"reason": "allowed",
	"headers": object.union(
		{
			"x-tenantgate-user": subject,
			"x-tenantgate-role": people[subject].role,
			"x-tenantgate-customer": customer,
		},
		extra_headers,
	),
}

# A fully valid request that is allowed, to be broken one field at a time.
valid_request := request("alice@contoso.example", "GET", route_to("contoso", "vbr-jobs"))

# ---------------------------------------------------------------------------
# Allow: the exact document and the method-to-access mapping.

test_decision_allowed_exact_document if {
	decision_for(valid_request) == allowed("alice@contoso.example", "contoso", {})
}

test_decision_allowed_customer_header_is_the_target if {
	doc := request("nora@northwind.example", "GET", route_to("contoso", "vbr-jobs"))
	decision_for(doc) == allowed("nora@northwind.example", "contoso", {})
}

test_decision_allowed_every_method_for_full_level if {
	every method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
		reason_for(request("alice@contoso.example", method, route_to("contoso", "company-info"))) == "allowed"
	}
}

test_decision_methods_map_to_read_and_full if {
	# company-user has read on failover plans: GET/HEAD read, the rest write.
	expected := {
		"GET": "allowed", "HEAD": "allowed",
		"POST": "role_forbids", "PUT": "role_forbids", "PATCH": "role_forbids", "DELETE": "role_forbids",
	}
	every method, want in expected {
		reason_for(request("erin@contoso.example", method, route_to("contoso", "failover-plans"))) == want
	}
}

# ---------------------------------------------------------------------------
# Row 1: bad_path (400).

test_decision_bad_path_exact_document if {
	doc := object.union(valid_request, {"path": {"valid": false}})
	decision_for(doc) == denied("bad_path", 400)
}

test_decision_bad_path_missing_path if {
	reason_for(object.remove(valid_request, ["path"])) == "bad_path"
}

test_decision_bad_path_valid_not_boolean if {
	every valid in ["true", 1, null, {}] {
		reason_for(object.union(valid_request, {"path": {"valid": valid}})) == "bad_path"
	}
}

test_decision_bad_path_empty_input if {
	decision_for({}) == denied("bad_path", 400)
}

# ---------------------------------------------------------------------------
# Row 2: unauthenticated (401, with www-authenticate).

test_decision_unauthenticated_exact_document if {
	decision_for(object.remove(valid_request, ["subject"])) == {
		"allowed": false,
		"status": 401,
		"reason": "unauthenticated",
		"headers": {"x-tenantgate-reason": "unauthenticated", "www-authenticate": "Bearer"},
	}
}

test_decision_unauthenticated_empty_or_ill_typed_subject if {
	every subject in ["", 42, null, true, ["alice@contoso.example"]] {
		reason_for(object.union(valid_request, {"subject": subject})) == "unauthenticated"
	}
}

test_decision_unauthenticated_only_401_has_www_authenticate if {
	unknown := headers_for(object.remove(valid_request, ["user"]))
	unknown == {"x-tenantgate-reason": "unknown_user"}
	not unknown["www-authenticate"]
	bad := headers_for(object.union(valid_request, {"path": {"valid": false}}))
	bad == {"x-tenantgate-reason": "bad_path"}
	not bad["www-authenticate"]
}

# ---------------------------------------------------------------------------
# Row 3: unknown_user / user_disabled (403).

test_decision_unknown_user_exact_document if {
	decision_for(object.remove(valid_request, ["user"])) == denied("unknown_user", 403)
}

test_decision_unknown_user_user_is_not_the_subject if {
	reason_for(object.union(valid_request, {"subject": "mallory@contoso.example"})) == "unknown_user"
}

test_decision_unknown_user_ill_typed_user if {
	every user in ["alice@contoso.example", [], null, true] {
		reason_for(object.union(valid_request, {"user": user})) == "unknown_user"
	}
}

test_decision_user_disabled_exact_document if {
	doc := object.union(valid_request, {"user": {"disabled": true}})
	decision_for(doc) == denied("user_disabled", 403)
}

test_decision_user_disabled_unless_explicitly_enabled if {
	reason_for(json.remove(valid_request, ["user/disabled"])) == "user_disabled"
	every flag in ["false", 0, null] {
		reason_for(object.union(valid_request, {"user": {"disabled": flag}})) == "user_disabled"
	}
}

# ---------------------------------------------------------------------------
# Row 4: customer_disabled (403).

test_decision_customer_disabled_own_customer if {
	doc := object.union(valid_request, {"user": {"customer": {"suspended": ["contoso"]}}})
	decision_for(doc) == denied("customer_disabled", 403)
}

test_decision_customer_disabled_ancestor if {
	doc := object.union(valid_request, {"user": {"customer": {"suspended": ["northwind"]}}})
	reason_for(doc) == "customer_disabled"
}

test_decision_customer_disabled_unknown_suspension if {
	reason_for(json.remove(valid_request, ["user/customer/suspended"])) == "customer_disabled"
	reason_for(json.remove(valid_request, ["user/customer"])) == "customer_disabled"
	reason_for(object.union(valid_request, {"user": {"customer": {"suspended": null}}})) == "customer_disabled"
}

# ---------------------------------------------------------------------------
# Row 5: method_not_allowed (403), case-sensitive.

test_decision_method_not_allowed_exact_document if {
	doc := object.union(valid_request, {"method": "get"})
	decision_for(doc) == denied("method_not_allowed", 403)
}

test_decision_method_not_allowed_other_methods if {
	every method in ["OPTIONS", "TRACE", "CONNECT", "Get", "", 1, null] {
		reason_for(object.union(valid_request, {"method": method})) == "method_not_allowed"
	}
	reason_for(object.remove(valid_request, ["method"])) == "method_not_allowed"
}

# ---------------------------------------------------------------------------
# Row 6: no_route (403).

test_decision_no_route_exact_document if {
	decision_for(object.remove(valid_request, ["route"])) == denied("no_route", 403)
}

test_decision_no_route_resource_not_in_catalog if {
	every resource in ["computers", "Users", "", "invoice"] {
		reason_for(request("alice@contoso.example", "GET", route_to("contoso", resource))) == "no_route"
	}
}

test_decision_no_route_missing_or_ill_typed_route if {
	reason_for(json.remove(valid_request, ["route/resource"])) == "no_route"
	reason_for(object.union(valid_request, {"route": "vbr-jobs"})) == "no_route"
}

# ---------------------------------------------------------------------------
# Row 7: outside_tenant (403).

test_decision_outside_tenant_exact_document if {
	doc := request("alice@contoso.example", "GET", route_to("northwind", "vbr-jobs"))
	decision_for(doc) == denied("outside_tenant", 403)
}

test_decision_outside_tenant_unknown_target if {
	doc := request("alice@contoso.example", "GET", route_to("nobody", "vbr-jobs"))
	not doc.target
	reason_for(doc) == "outside_tenant"
}

test_decision_outside_tenant_sibling if {
	reason_for(request("alice@contoso.example", "GET", route_to("fabrikam", "vbr-jobs"))) == "outside_tenant"
}

test_decision_outside_tenant_below_is_inside if {
	reason_for(request("alice@contoso.example", "GET", route_to("contoso-paris", "vbr-jobs"))) == "allowed"
	reason_for(request("ann@acme.example", "DELETE", route_to("contoso-paris", "vbr-jobs"))) == "allowed"
	reason_for(request("adam@contoso.example", "POST", route_to("contoso-paris", "vbr-jobs"))) == "allowed"
}

test_decision_outside_tenant_target_not_the_routed_customer if {
	# A target that is not the route's customer is not trusted.
	doc := object.union(valid_request, {"target": {"id": "contoso-paris"}})
	reason_for(doc) == "outside_tenant"
}

test_decision_outside_tenant_target_without_lineage if {
	reason_for(json.remove(valid_request, ["target/lineage"])) == "outside_tenant"
	reason_for(object.union(valid_request, {"target": {"lineage": "contoso"}})) == "outside_tenant"
}

test_decision_outside_tenant_location_user_held_to_own_customer if {
	reason_for(request("bob@contoso.example", "GET", route_to("contoso-paris", "vbr-jobs"))) == "outside_tenant"
	reason_for(request("bob@contoso.example", "GET", route_to("contoso", "vbr-jobs"))) == "allowed"
}

test_decision_outside_tenant_read_own_needs_own_customer if {
	reason_for(request("carol@contoso.example", "GET", route_to("contoso-paris", "agent-jobs"))) == "outside_tenant"
	reason_for(request("carol@contoso.example", "GET", route_to("contoso", "agent-jobs"))) == "allowed"
}

test_decision_outside_tenant_hold_depends_on_read_own_level if {
	# carol's level on configuration is none, not read-own: the target below is
	# inside her tenant, and the role row is what denies.
	reason_for(request("carol@contoso.example", "GET", route_to("contoso-paris", "company-info"))) == "role_forbids"
}

# ---------------------------------------------------------------------------
# Row 8: module_unavailable (403), by the target's type.

test_decision_module_unavailable_exact_document if {
	doc := request("alice@contoso.example", "GET", route_to("contoso-paris", "customers"))
	decision_for(doc) == denied("module_unavailable", 403)
}

test_decision_module_unavailable_quick_installation_above_reseller if {
	reason_for(request("ann@acme.example", "GET", route_to("acme", "quick-installation"))) == "module_unavailable"
	reason_for(request("sam@umbrella.example", "POST", route_to("umbrella", "passphrases"))) == "module_unavailable"
}

test_decision_module_unavailable_uses_target_type if {
	# A distributor's owner may use quick installation at a reseller below it ...
	reason_for(request("ann@acme.example", "GET", route_to("northwind", "passphrases"))) == "allowed"

	# ... and a reseller's owner may not manage customers of a site below it.
	reason_for(request("nora@northwind.example", "GET", route_to("contoso-paris", "customers"))) == "module_unavailable"
}

test_decision_module_unavailable_not_for_resources_without_module if {
	every resource in ["company-info", "locations", "alarm-settings", "invoices", "backup-reports"] {
		reason_for(request("pia@contoso-paris.example", "GET", route_to("contoso-paris", resource))) == "allowed"
	}
}

test_decision_module_unavailable_target_without_type if {
	reason_for(json.remove(valid_request, ["target/type"])) == "module_unavailable"
	reason_for(object.union(valid_request, {"target": {"type": "planet"}})) == "module_unavailable"
}

# ---------------------------------------------------------------------------
# Row 9: role_forbids (403), the role's level on the functionality.

test_decision_role_forbids_exact_document if {
	doc := request("erin@contoso.example", "POST", route_to("contoso", "failover-plans"))
	decision_for(doc) == denied("role_forbids", 403)
}

test_decision_role_forbids_billing if {
	reason_for(request("adam@contoso.example", "GET", route_to("contoso", "invoices"))) == "role_forbids"
	reason_for(request("ivan@contoso.example", "GET", route_to("contoso", "invoices"))) == "allowed"
	reason_for(request("ivan@contoso.example", "GET", route_to("contoso", "summary"))) == "role_forbids"
}

test_decision_role_forbids_read_own_write if {
	# A write by a read-own role is a role denial, not a computer one.
	doc := request("carol@contoso.example", "POST", on_computer(route_to("contoso", "agent-jobs"), "pc-17"))
	reason_for(doc) == "role_forbids"
}

test_decision_role_forbids_unknown_or_missing_role if {
	reason_for(object.union(valid_request, {"user": {"role": "superuser"}})) == "role_forbids"
	reason_for(json.remove(valid_request, ["user/role"])) == "role_forbids"
}

# ---------------------------------------------------------------------------
# Row 10: owner protection (role_forbids).

owner_route := with_id(route_to("contoso", "users"), "alice@contoso.example")

test_decision_owner_protection_administrator_denied if {
	every method in ["POST", "PUT", "PATCH", "DELETE"] {
		decision_for(request("adam@contoso.example", method, owner_route)) == denied("role_forbids", 403)
	}
}

test_decision_owner_protection_administrator_may_read_owner if {
	reason_for(request("adam@contoso.example", "GET", owner_route)) == "allowed"
}

test_decision_owner_protection_administrator_may_write_non_owner if {
	reason_for(request("adam@contoso.example", "PUT", with_id(route_to("contoso", "users"), "erin@contoso.example"))) == "allowed"
	reason_for(request("adam@contoso.example", "POST", route_to("contoso", "users"))) == "allowed"
	reason_for(request("adam@contoso.example", "PUT", with_id(route_to("contoso", "users"), "new@contoso.example"))) == "allowed"
}

test_decision_owner_protection_owner_may_write_self if {
	reason_for(request("alice@contoso.example", "PATCH", owner_route)) == "allowed"
}

test_decision_owner_protection_owner_of_parent_allowed if {
	reason_for(request("nora@northwind.example", "PUT", owner_route)) == "allowed"
	reason_for(request("ann@acme.example", "DELETE", owner_route)) == "allowed"
	reason_for(request("alice@contoso.example", "DELETE", with_id(route_to("contoso-paris", "users"), "pia@contoso-paris.example"))) == "allowed"
}

test_decision_owner_protection_owner_of_other_branch_denied if {
	# alice is an owner, but not at or above nora's customer.
	doc := request("alice@contoso.example", "DELETE", with_id(route_to("contoso", "users"), "nora@northwind.example"))
	reason_for(doc) == "role_forbids"
}

test_decision_owner_protection_named_user_without_role_is_protected if {
	doc := json.remove(request("adam@contoso.example", "PUT", owner_route), ["named_user/role"])
	reason_for(doc) == "role_forbids"
}

test_decision_owner_protection_ignores_case if {
	# No user is Alice@Contoso.example, but an upstream that looks ids up
	# case-insensitively would write alice's record.
	route := with_id(route_to("contoso", "users"), "Alice@CONTOSO.example")
	doc := request("adam@contoso.example", "PUT", route)
	not doc.named_user
	decision_for(doc) == denied("role_forbids", 403)
	reason_for(request("nora@northwind.example", "PUT", route)) == "allowed"
	reason_for(request("adam@contoso.example", "GET", route)) == "allowed"
}

test_decision_owner_protection_every_owner_named if {
	# Two owners whose ids differ only in case: the requester must be at or
	# above each one's customer.
	route := with_id(route_to("contoso", "users"), "alice@contoso.example")
	owners := {"named_owners": [
		{"id": "alice@contoso.example", "customer": customer_doc("contoso")},
		{"id": "ALICE@contoso.example", "customer": customer_doc("fabrikam")},
	]}
	reason_for(object.union(request("alice@contoso.example", "DELETE", route), owners)) == "role_forbids"
	reason_for(object.union(request("ann@acme.example", "DELETE", route), owners)) == "allowed"
	reason_for(object.union(request("nora@northwind.example", "DELETE", route), owners)) == "allowed"
}

test_decision_owner_protection_ill_typed_owner_is_protected if {
	route := with_id(route_to("contoso", "users"), "x@contoso.example")
	every owners in [[{"id": "x@contoso.example"}], [{"customer": {"lineage": "contoso"}}], {"a": {}}] {
		doc := object.union(request("nora@northwind.example", "PUT", route), {"named_owners": owners})
		reason_for(doc) == "role_forbids"
	}
}

test_decision_owner_protection_only_for_users_resource if {
	# An owner's id under another resource names no user to protect.
	doc := request("adam@contoso.example", "DELETE", with_id(route_to("contoso", "locations"), "alice@contoso.example"))
	doc.named_user
	reason_for(doc) == "allowed"
}

# ---------------------------------------------------------------------------
# Row 11: location scope (location_forbidden).

test_decision_location_read_without_qualifier_carries_header if {
	every method in ["GET", "HEAD"] {
		doc := request("bob@contoso.example", method, route_to("contoso", "vbr-jobs"))
		decision_for(doc) == allowed("bob@contoso.example", "contoso", {"x-tenantgate-locations": "branch-1,hq"})
	}
}

test_decision_location_own_qualifier_has_no_header if {
	doc := request("bob@contoso.example", "GET", in_location(route_to("contoso", "vbr-jobs"), "hq"))
	decision_for(doc) == allowed("bob@contoso.example", "contoso", {})
}

test_decision_location_write_with_own_qualifier if {
	doc := request("bob@contoso.example", "DELETE", in_location(route_to("contoso", "vbr-jobs"), "branch-1"))
	decision_for(doc) == allowed("bob@contoso.example", "contoso", {})
}

test_decision_location_forbidden_other_qualifier if {
	every method in ["GET", "POST"] {
		doc := request("bob@contoso.example", method, in_location(route_to("contoso", "vbr-jobs"), "paris"))
		decision_for(doc) == denied("location_forbidden", 403)
	}
}

test_decision_location_forbidden_write_without_qualifier if {
	every method in ["POST", "PUT", "PATCH", "DELETE"] {
		reason_for(request("bob@contoso.example", method, route_to("contoso", "vbr-jobs"))) == "location_forbidden"
	}
}

test_decision_location_no_limit_without_locations if {
	unlimited := object.union(
		request("adam@contoso.example", "POST", route_to("contoso", "vbr-jobs")),
		{"user": {"locations": []}},
	)
	decision_for(unlimited) == allowed("adam@contoso.example", "contoso", {})
	decision_for(request("adam@contoso.example", "GET", route_to("contoso", "vbr-jobs"))) == allowed("adam@contoso.example", "contoso", {})
	reason_for(request("adam@contoso.example", "GET", in_location(route_to("contoso", "vbr-jobs"), "paris"))) == "allowed"
}

test_decision_location_ill_typed_locations_fail_closed if {
	doc := object.union(request("adam@contoso.example", "GET", route_to("contoso", "vbr-jobs")), {"user": {"locations": "hq"}})

	# A read would need the header, which cannot be built: the default 503.
	decision_for(doc) == denied("internal_error", 503)
	reason_for(object.union(doc, {"route": {"locations": ["hq"]}})) == "location_forbidden"
}

test_decision_location_object_locations_match_nothing if {
	route := in_location(route_to("contoso", "vbr-jobs"), "hq")
	doc := object.union(request("bob@contoso.example", "GET", route), {"user": {"locations": {"a": "hq"}}})
	reason_for(doc) == "location_forbidden"
}

# bob, limited to hq only.
bob_at_hq(method, route) := object.union(request("bob@contoso.example", method, route), {"user": {"locations": ["hq"]}})

test_decision_location_locations_id_is_a_qualifier if {
	nested := location_item(in_location(route_to("contoso", "locations"), "hq"), "branch-1")
	every method in ["PUT", "DELETE", "GET"] {
		decision_for(bob_at_hq(method, nested)) == denied("location_forbidden", 403)
	}
	reason_for(bob_at_hq("GET", location_item(route_to("contoso", "locations"), "branch-1"))) == "location_forbidden"
	decision_for(bob_at_hq("PUT", location_item(route_to("contoso", "locations"), "hq"))) == allowed("bob@contoso.example", "contoso", {})
	own_nested := location_item(in_location(route_to("contoso", "locations"), "hq"), "hq")
	decision_for(bob_at_hq("DELETE", own_nested)) == allowed("bob@contoso.example", "contoso", {})
}

test_decision_location_locations_collection if {
	# A write naming no location is denied; a read is filtered by the header.
	reason_for(bob_at_hq("POST", route_to("contoso", "locations"))) == "location_forbidden"
	decision_for(bob_at_hq("GET", route_to("contoso", "locations"))) == allowed("bob@contoso.example", "contoso", {"x-tenantgate-locations": "hq"})
	no_qualifier := object.union(route_to("contoso", "locations"), {"locations": []})
	decision_for(bob_at_hq("GET", no_qualifier)) == allowed("bob@contoso.example", "contoso", {"x-tenantgate-locations": "hq"})
	reason_for(bob_at_hq("PUT", no_qualifier)) == "location_forbidden"
}

test_decision_location_every_qualifier_must_be_own if {
	route := {"customer": "contoso", "resource": "vbr-jobs", "locations": ["hq", "paris"]}
	reason_for(bob_at_hq("GET", route)) == "location_forbidden"
	reason_for(bob_at_hq("GET", object.union(route, {"locations": ["paris", "hq"]}))) == "location_forbidden"
	reason_for(bob_at_hq("GET", object.union(route, {"locations": ["hq", "hq"]}))) == "allowed"
}

test_decision_location_ill_typed_qualifiers_fail_closed if {
	every locations in ["hq", {"a": "hq"}, true, 5] {
		route := {"customer": "contoso", "resource": "vbr-jobs", "locations": locations}
		reason_for(bob_at_hq("GET", route)) == "location_forbidden"
	}
}

# ---------------------------------------------------------------------------
# Row 12: computer scope (computer_forbidden), for read-own levels.

test_decision_computer_collection_read_carries_header if {
	every resource in ["agent-jobs", "summary", "active-alarms", "protected-computers"] {
		every method in ["GET", "HEAD"] {
			doc := request("carol@contoso.example", method, route_to("contoso", resource))
			decision_for(doc) == allowed("carol@contoso.example", "contoso", {"x-tenantgate-computers": "pc-17,pc-18"})
		}
	}
}

test_decision_computer_own_qualifier_has_no_header if {
	doc := request("carol@contoso.example", "GET", on_computer(route_to("contoso", "agent-jobs"), "pc-17"))
	decision_for(doc) == allowed("carol@contoso.example", "contoso", {})
	with_job := request("carol@contoso.example", "GET", with_id(on_computer(route_to("contoso", "agent-jobs"), "pc-18"), "job-1"))
	decision_for(with_job) == allowed("carol@contoso.example", "contoso", {})
}

test_decision_computer_forbidden_other_qualifier if {
	doc := request("carol@contoso.example", "GET", on_computer(route_to("contoso", "agent-jobs"), "pc-99"))
	decision_for(doc) == denied("computer_forbidden", 403)
}

test_decision_computer_protected_computers_id_is_a_qualifier if {
	own := request("carol@contoso.example", "GET", with_id(route_to("contoso", "protected-computers"), "pc-17"))
	decision_for(own) == allowed("carol@contoso.example", "contoso", {})
	other := request("carol@contoso.example", "GET", with_id(route_to("contoso", "protected-computers"), "pc-99"))
	reason_for(other) == "computer_forbidden"
}

test_decision_computer_every_qualifier_must_be_own if {
	route := on_computer(route_to("contoso", "protected-computers"), "pc-17")
	reason_for(request("carol@contoso.example", "GET", with_id(route, "pc-99"))) == "computer_forbidden"
	reason_for(request("carol@contoso.example", "GET", with_id(route, "pc-18"))) == "allowed"
	other := on_computer(route_to("contoso", "protected-computers"), "pc-99")
	reason_for(request("carol@contoso.example", "GET", with_id(other, "pc-17"))) == "computer_forbidden"
}

test_decision_computer_forbidden_non_computer_id if {
	every route in [
		with_id(route_to("contoso", "summary"), "today"),
		with_id(route_to("contoso", "agent-jobs"), "job-1"),
		with_id(route_to("contoso", "active-alarms"), "alarm-1"),
	] {
		reason_for(request("carol@contoso.example", "GET", route)) == "computer_forbidden"
	}
}

test_decision_computer_forbidden_subtenant_without_computers if {
	every route in [
		route_to("contoso", "agent-jobs"),
		on_computer(route_to("contoso", "agent-jobs"), "pc-17"),
		with_id(route_to("contoso", "protected-computers"), "pc-17"),
	] {
		doc := request("tom@contoso.example", "GET", route)
		reason_for(doc) == "computer_forbidden"
		reason_for(object.union(doc, {"user": {"computers": []}})) == "computer_forbidden"
	}
}

test_decision_computer_ill_typed_computers_fail_closed if {
	collection := request("carol@contoso.example", "GET", route_to("contoso", "agent-jobs"))
	as_object := object.union(collection, {"user": {"computers": {"a": "pc-17"}}})
	reason_for(as_object) == "computer_forbidden"
	reason_for(object.union(as_object, {"route": {"computer": "pc-17"}})) == "computer_forbidden"

	# A list the header cannot be built from: the default 503, not an allow without it.
	with_number := object.union(collection, {"user": {"computers": ["pc-17", 5]}})
	decision_for(with_number) == denied("internal_error", 503)
}

test_decision_computer_scope_only_for_read_own if {
	# erin's level on agent jobs is read: no computer scope, no header.
	doc := request("erin@contoso.example", "GET", on_computer(route_to("contoso", "agent-jobs"), "pc-99"))
	decision_for(doc) == allowed("erin@contoso.example", "contoso", {})
	collection := request("erin@contoso.example", "GET", route_to("contoso", "agent-jobs"))
	decision_for(collection) == allowed("erin@contoso.example", "contoso", {})
}

# ---------------------------------------------------------------------------
# The outside_tenant of the scope rows (tenantgate help requests): a location-limited or
# read-own user's target below its own customer fails in the scope row, after
# module, role and owner protection, not at row 7.

# erin, limited to hq: a location-limited company-user.
limited_erin(method, route) := object.union(request("erin@contoso.example", method, route), {"user": {"locations": ["hq"]}})

test_decision_scope_outside_tenant_after_role if {
	# A company-user's level on passphrases (managed-computers) is read.
	reason_for(limited_erin("POST", route_to("contoso-paris", "passphrases"))) == "role_forbids"
}

test_decision_scope_outside_tenant_after_module if {
	# A site has no customers module.
	reason_for(limited_erin("GET", route_to("contoso-paris", "customers"))) == "module_unavailable"
}

test_decision_scope_outside_tenant_from_location_row if {
	# Level full on vbr-jobs passes row 9: the location scope row denies.
	decision_for(limited_erin("POST", route_to("contoso-paris", "vbr-jobs"))) == denied("outside_tenant", 403)
	decision_for(limited_erin("GET", in_location(route_to("contoso-paris", "vbr-jobs"), "hq"))) == denied("outside_tenant", 403)
}

test_decision_scope_outside_tenant_after_owner_protection if {
	doc := request("bob@contoso.example", "PUT", with_id(route_to("contoso-paris", "users"), "pia@contoso-paris.example"))
	reason_for(doc) == "role_forbids"
}

test_decision_scope_outside_tenant_read_own_after_role if {
	# carol's level on agent-jobs is read-own: a write is the role's denial.
	reason_for(request("carol@contoso.example", "POST", route_to("contoso-paris", "agent-jobs"))) == "role_forbids"
	reason_for(request("carol@contoso.example", "GET", route_to("contoso-paris", "agent-jobs"))) == "outside_tenant"
}

test_decision_scope_outside_tenant_location_before_computer if {
	# Limited to locations and read-own: the location row's outside_tenant
	# comes before the computer row's checks.
	doc := object.union(
		request("carol@contoso.example", "GET", on_computer(route_to("contoso-paris", "agent-jobs"), "pc-99")),
		{"user": {"locations": ["hq"]}},
	)
	reason_for(doc) == "outside_tenant"
}

# ---------------------------------------------------------------------------
# Ordering: an input failing two rows gets the earlier row's reason.

test_decision_order_bad_path_before_unauthenticated if {
	doc := object.remove(object.union(valid_request, {"path": {"valid": false}}), ["subject"])
	reason_for(doc) == "bad_path"
}

test_decision_order_unauthenticated_before_unknown_user if {
	reason_for(object.remove(valid_request, ["subject", "user"])) == "unauthenticated"
}

test_decision_order_user_disabled_before_customer_disabled if {
	doc := object.union(valid_request, {"user": {"disabled": true, "customer": {"suspended": ["contoso"]}}})
	reason_for(doc) == "user_disabled"
}

test_decision_order_customer_disabled_before_method if {
	doc := object.union(valid_request, {"method": "get", "user": {"customer": {"suspended": ["acme"]}}})
	reason_for(doc) == "customer_disabled"
}

test_decision_order_method_before_no_route if {
	reason_for(object.remove(object.union(valid_request, {"method": "OPTIONS"}), ["route"])) == "method_not_allowed"
}

test_decision_order_no_route_before_outside_tenant if {
	reason_for(request("alice@contoso.example", "GET", route_to("nobody", "computers"))) == "no_route"
}

test_decision_order_outside_tenant_before_module if {
	# acme is outside alice's tenant and has no quick installation.
	reason_for(request("alice@contoso.example", "GET", route_to("acme", "quick-installation"))) == "outside_tenant"
}

test_decision_order_module_before_role if {
	# ivan may not touch configuration, and sites have no customers module.
	reason_for(request("ivan@contoso.example", "GET", route_to("contoso-paris", "customers"))) == "module_unavailable"
}

test_decision_order_role_before_location if {
	doc := request("bob@contoso.example", "GET", in_location(route_to("contoso", "invoices"), "paris"))
	reason_for(doc) == "role_forbids"
}

test_decision_order_owner_protection_before_location if {
	reason_for(request("bob@contoso.example", "DELETE", owner_route)) == "role_forbids"
}

test_decision_order_location_before_computer if {
	doc := object.union(
		request("carol@contoso.example", "GET", in_location(on_computer(route_to("contoso", "agent-jobs"), "pc-99"), "paris")),
		{"user": {"locations": ["hq"]}},
	)
	reason_for(doc) == "location_forbidden"
}

test_decision_both_scope_headers_when_both_scopes_apply if {
	doc := object.union(
		request("carol@contoso.example", "GET", route_to("contoso", "agent-jobs")),
		{"user": {"locations": ["hq"]}},
	)
	headers_for(doc) == {
		"x-tenantgate-user": "carol@contoso.example",
		"x-tenantgate-role": "subtenant-user",
		"x-tenantgate-customer": "contoso",
		"x-tenantgate-locations": "hq",
		"x-tenantgate-computers": "pc-17,pc-18",
	}
}

# ---------------------------------------------------------------------------
# Robustness: removing any field the decision needs denies with that row's
# reason, and the decision is always a well-formed object.

removals := {
	"path": "bad_path",
	"path/valid": "bad_path",
	"subject": "unauthenticated",
	"user": "unknown_user",
	"user/id": "unknown_user",
	"user/disabled": "user_disabled",
	"user/customer": "customer_disabled",
	"user/customer/suspended": "customer_disabled",
	"method": "method_not_allowed",
	"route": "no_route",
	"route/resource": "no_route",
	"route/customer": "outside_tenant",
	"target": "outside_tenant",
	"target/id": "outside_tenant",
	"target/lineage": "outside_tenant",
	"user/customer/id": "outside_tenant",
	"target/type": "module_unavailable",
	"user/role": "role_forbids",
}

test_decision_missing_fields_deny_with_their_row if {
	every path, want in removals {
		reason_for(json.remove(valid_request, [path])) == want
	}
}

test_decision_well_formed_for_any_input if {
	docs := array.concat(
		[json.remove(valid_request, [path]) | some path, _ in removals],
		[{}, {"path": "yes"}, valid_request, object.union(valid_request, {"user": {"locations": "hq"}})],
	)
	every doc in docs {
		is_well_formed(decision_for(doc))
	}
}

is_well_formed(d) if {
	object.keys(d) == {"allowed", "status", "reason", "headers"}
	d.allowed == true
	d.status == 200
	d.reason == "allowed"
	d.headers["x-tenantgate-user"]
}

is_well_formed(d) if {
	object.keys(d) == {"allowed", "status", "reason", "headers"}
	d.allowed == false
	d.status in {400, 401, 403, 503}
	d.headers["x-tenantgate-reason"] == d.reason
}

test_decision_default_is_internal_error if {
	# Nothing in {} can build the allow headers, so forcing the reason to
	# "allowed" leaves the computed decision undefined: the default denies.
	authz.decision == denied("internal_error", 503) with authz.reason as "allowed" with input as {}
}

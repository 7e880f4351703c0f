# The explain rule: each row's result, that the first failing row is the
# reason the decision gives (for an input of every reason), and the facts.
# Shares the fixtures of authz_test.rego (same package).
package tenantgate.authz_test

import data.tenantgate.authz

explain_for(doc) := e if {
	e := authz.explain with input as doc
}

results_of(doc) := [row.result | some row in explain_for(doc).rows]

# The result of the rows of a rule, by rule name.
result_of(doc, rule) := r if {
	some row in explain_for(doc).rows
	row.rule == rule
	r := row.result
}

# One input for each reason the chain gives (and an allow).
every_reason := {
	"allowed": valid_request,
	"bad_path": object.union(valid_request, {"path": {"valid": false}}),
	"unauthenticated": object.remove(valid_request, ["subject"]),
	"unknown_user": object.remove(valid_request, ["user"]),
	"user_disabled": object.union(valid_request, {"user": {"disabled": true}}),
	"customer_disabled": object.union(valid_request, {"user": {"customer": {"suspended": ["northwind"]}}}),
	"method_not_allowed": object.union(valid_request, {"method": "get"}),
	"no_route": object.union(valid_request, {"route": {"resource": "nope"}}),
	"outside_tenant": request("alice@contoso.example", "GET", route_to("fabrikam", "vbr-jobs")),
	"module_unavailable": request("ann@acme.example", "GET", route_to("acme", "quick-installation")),
	"role_forbids": request("ivan@contoso.example", "GET", route_to("contoso", "vbr-jobs")),
	"location_forbidden": request("bob@contoso.example", "POST", in_location(route_to("contoso", "vbr-jobs"), "other")),
	"computer_forbidden": request("carol@contoso.example", "GET", on_computer(route_to("contoso", "protected-computers"), "pc-99")),
}

# The owner-protection and scope rows of outside_tenant and role_forbids.
later_rows := {
	"owner": request("adam@contoso.example", "DELETE", with_id(route_to("contoso", "users"), "alice@contoso.example")),
	"location_outside": request("bob@contoso.example", "GET", route_to("contoso-paris", "vbr-jobs")),
	"computer_outside": request("carol@contoso.example", "GET", route_to("contoso-paris", "protected-computers")),
}

test_explain_every_reason_is_covered if {
	every reason, doc in every_reason {
		reason_for(doc) == reason
	}
}

test_explain_first_failing_row_is_the_reason if {
	docs := array.concat([doc | some doc in every_reason], [doc | some doc in later_rows])
	every doc in docs {
		e := explain_for(doc)
		failing := [row | some row in e.rows; row.result == "fail"]
		first_failing_reason(failing) == e.decision.reason
	}
}

first_failing_reason(failing) := failing[0].reason if count(failing) > 0

first_failing_reason(failing) := "allowed" if count(failing) == 0

test_explain_decision_is_the_decision if {
	every doc in every_reason {
		explain_for(doc).decision == decision_for(doc)
	}
}

test_explain_rows_follow_the_order if {
	rows := explain_for(valid_request).rows
	[row.rule | some row in rows] == [row.rule | some row in authz.explain_order]
	every i, row in rows {
		row.row >= rows[max({0, i - 1})].row
	}
}

test_explain_allowed_every_row_passes if {
	every r in results_of(valid_request) {
		r == "pass"
	}
}

test_explain_one_failure_then_not_reached if {
	every doc in every_reason {
		results := results_of(doc)
		count([r | some r in results; r == "fail"]) <= 1

		# a row is not reached only after a failing or unreached row
		reached_after_pass := [i |
			some i, r in results
			r == "not_reached"
			object.get(results, i - 1, "pass") == "pass"
		]
		count(reached_after_pass) == 0
	}
}

test_explain_bob_branch_1_write if {
	doc := request("bob@contoso.example", "POST", in_location(route_to("contoso", "vbr-jobs"), "branch-9"))
	result_of(doc, "role_level_covers_access") == "pass"
	result_of(doc, "not location_scope_leaves_own_customer") == "pass"
	result_of(doc, "location_scope_allows") == "fail"
	result_of(doc, "computer_scope_allows") == "not_reached"
	e := explain_for(doc)
	e.facts.location_qualifiers == ["branch-9"]
	e.facts.location_limited == true
	e.facts.user.locations == ["branch-1", "hq"]
	e.facts.level == "full"
	e.facts.access == "full"
}

test_explain_empty_input_fails_the_first_row if {
	e := authz.explain with input as {}
	[row.result | some row in e.rows][0] == "fail"
	every row in array.slice(e.rows, 1, count(e.rows)) {
		row.result == "not_reached"
	}
	e.decision.reason == "bad_path"
}

test_explain_facts_of_a_module_row if {
	e := explain_for(every_reason.module_unavailable)
	e.facts.module == "quick-installation"
	e.facts.module_available == false
	e.facts.target.type == "distributor"
	e.facts.functionality == "managed-computers"
	result_of(every_reason.module_unavailable, "module_is_available_to_target") == "fail"
}

test_explain_facts_resource_without_module if {
	e := explain_for(request("alice@contoso.example", "GET", route_to("contoso", "invoices")))
	e.facts.module == "none"
	not e.facts.module_available
}

test_explain_facts_of_the_user_chain if {
	doc := every_reason.customer_disabled
	e := explain_for(doc)
	e.facts.disabled_in_chain == ["northwind"]
	e.facts.user_chain == ["contoso", "northwind", "umbrella", "acme"]
	e.facts.user_customer == "contoso"
}

test_explain_facts_owner_protection if {
	e := explain_for(later_rows.owner)
	e.facts.owner_protection.subject == "alice@contoso.example"
	e.facts.owner_protection.owners == {{"id": "alice@contoso.example", "customer": "contoso", "requester_may_manage": false}}
	result_of(later_rows.owner, "not owner_protection_forbids") == "fail"
	e.decision.reason == "role_forbids"
}

test_explain_facts_owner_protection_by_an_owner if {
	doc := request("nora@northwind.example", "DELETE", with_id(route_to("contoso", "users"), "alice@contoso.example"))
	some owner in explain_for(doc).facts.owner_protection.owners
	owner.requester_may_manage == true
	result_of(doc, "not owner_protection_forbids") == "pass"
}

test_explain_facts_scope_headers_due if {
	loc := explain_for(request("bob@contoso.example", "GET", route_to("contoso", "vbr-jobs")))
	loc.facts.scope_headers_due == {"x-tenantgate-locations"}
	comp := explain_for(request("carol@contoso.example", "GET", route_to("contoso", "protected-computers")))
	comp.facts.scope_headers_due == {"x-tenantgate-computers"}
	comp.facts.read_own == true
	not explain_for(valid_request).facts.scope_headers_due
}

test_explain_facts_computer_qualifiers if {
	e := explain_for(every_reason.computer_forbidden)
	e.facts.computer_qualifiers == {"pc-99"}
	result_of(every_reason.computer_forbidden, "computer_scope_allows") == "fail"
}

test_explain_scope_outside_tenant_rows if {
	result_of(later_rows.location_outside, "not location_scope_leaves_own_customer") == "fail"
	result_of(later_rows.computer_outside, "not computer_scope_leaves_own_customer") == "fail"
	result_of(later_rows.computer_outside, "computer_scope_allows") == "not_reached"
}

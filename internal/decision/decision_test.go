package decision_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/decision"
)

// allowAs is an allow that sets the given headers, as the policy answers.
func allowAs(names ...string) decision.Decision {
	d := decision.Decision{Allowed: true, Status: 200, Reason: decision.ReasonAllowed}
	for _, n := range names {
		d.Headers = append(d.Headers, decision.Header{Name: n, Value: "v"})
	}
	return d
}

// unset is every header tenantgate may set minus the ones given: what an
// allow lists for removal whatever the client sent.
func unset(set ...string) []string {
	var out []string
	for _, n := range decision.HeaderNames {
		if !slices.Contains(set, n) {
			out = append(out, n)
		}
	}
	return out
}

func TestHeadersToRemove(t *testing.T) {
	user := []string{decision.HeaderUser, decision.HeaderRole, decision.HeaderCustomer}
	scoped := append(slices.Clone(user), decision.HeaderLocations)
	cases := []struct {
		name string
		set  []string // the headers the decision sets
		sent []string // the request's header names, as a front end sees them
		// extra is what must be listed beyond unset(set...), lower-case.
		extra []string
	}{
		{name: "nothing sent", set: user},
		{name: "ordinary headers only", set: user,
			sent: []string{"authorization", "Content-Type", "x-tenantgatex", "x-tenant-user", "tenantgate-user", "x-forwarded-uri", "X_Forwarded_Uri"}},
		{name: "a name tenantgate sets is overwritten, not removed", set: user,
			sent: []string{"x-tenantgate-user", "X-Tenantgate-Role", "X-TENANTGATE-CUSTOMER"}},
		{name: "a name tenantgate may set but does not is listed once", set: user,
			sent: []string{"x-tenantgate-locations", "X-Tenantgate-Locations", "X-TENANTGATE-REASON"}},
		{name: "scope header set by the decision", set: scoped,
			sent: []string{"X-Tenantgate-Locations"}},
		{name: "other names with the prefix, any case", set: user,
			sent:  []string{"x-tenantgate-tenant", "X-Tenantgate-Admin", "X-TENANTGATE-ADMIN", "x-TenantGate-admin"},
			extra: []string{"x-tenantgate-tenant", "x-tenantgate-admin"}},
		{name: "underscore spellings of names tenantgate sets", set: user,
			sent:  []string{"x_tenantgate_user", "X_Tenantgate_Role", "x-tenantgate_customer", "x_tenantgate-user"},
			extra: []string{"x_tenantgate_user", "x_tenantgate_role", "x-tenantgate_customer", "x_tenantgate-user"}},
		{name: "underscore spellings of names tenantgate does not set", set: user,
			sent:  []string{"x_tenantgate_locations", "X_TENANTGATE_DRY_RUN_DENY", "x-tenantgate-dry_run_deny"},
			extra: []string{"x_tenantgate_locations", "x_tenantgate_dry_run_deny", "x-tenantgate-dry_run_deny"}},
		{name: "underscore spelling of the scope header the decision sets", set: scoped,
			sent:  []string{"X_Tenantgate_Locations", "x_tenantgate_locations"},
			extra: []string{"x_tenantgate_locations"}},
		{name: "duplicates across spellings and cases", set: user,
			sent:  []string{"X_TENANTGATE_X", "x_tenantgate_x", "X_Tenantgate_X", "x-tenantgate-x", "X-TENANTGATE-X"},
			extra: []string{"x_tenantgate_x", "x-tenantgate-x"}},
		{name: "the bare prefix", set: user,
			sent:  []string{"x-tenantgate-", "X_TENANTGATE_"},
			extra: []string{"x-tenantgate-", "x_tenantgate_"}},
		{name: "shorter than the prefix", set: user,
			sent: []string{"x", "x-tenantgate", "x_tenantgate", ""}},
		{name: "a deny-shaped decision still lists every unset name", set: nil,
			sent:  []string{"x-tenantgate-reason", "x_tenantgate_reason"},
			extra: []string{"x_tenantgate_reason"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := allowAs(tc.set...).HeadersToRemove(slices.Values(tc.sent))
			want := append(unset(tc.set...), tc.extra...)
			if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
				t.Errorf("HeadersToRemove(%q) = %q, want %q (any order)", tc.sent, got, want)
			}
			// Envoy removes by exact (lower-case) name: a header the
			// decision sets must never be listed too, whatever order Envoy
			// applies the two lists in.
			for _, name := range got {
				if _, set := allowAs(tc.set...).Header(name); set {
					t.Errorf("%s is both set and removed", name)
				}
			}
		})
	}
}

// TestIsTenantgateHeader pins the name rule the proxies' configs follow too.
func TestIsTenantgateHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"x-tenantgate-user": true, "X-Tenantgate-User": true, "x_tenantgate_user": true,
		"X_TENANTGATE-ROLE": true, "x-tenantgate_role": true, "x-tenantgate-": true,
		"x-tenantgate": false, "x-tenantgatex-user": false, "xx-tenantgate-user": false,
		"x-tenant-gate-user": false, "x.tenantgate.user": false, "": false,
	} {
		if got := decision.IsTenantgateHeader(name); got != want {
			t.Errorf("IsTenantgateHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestHeadersToRemoveMany: many distinct forged names, each listed once.
// (The speed of this is BenchmarkHeadersToRemove's; this checks the answer.)
func TestHeadersToRemoveMany(t *testing.T) {
	sent := forgedNames(5000, true)
	got := allowAs(decision.HeaderUser).HeadersToRemove(slices.Values(sent))
	want := map[string]bool{}
	for _, n := range append(unset(decision.HeaderUser), sent...) {
		want[n] = true
	}
	if len(got) != len(want) {
		t.Fatalf("%d names listed, want %d", len(got), len(want))
	}
	for _, n := range got {
		if !want[n] {
			t.Fatalf("%q listed, not sent", n)
		}
	}
}

// forgedNames are n distinct x-tenantgate-* names, every third one in `_`
// spelling, as an attacker would send to make the removal list expensive.
func forgedNames(n int, underscores bool) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("x-tenantgate-forged-%06d", i)
		if underscores && i%3 == 0 {
			out[i] = strings.ReplaceAll(out[i], "-", "_")
		}
	}
	return out
}

// BenchmarkHeadersToRemove measures building the removal list for an allow
// with no forged headers (the usual request) and with 40,000 distinct forged
// x-tenantgate-* names (an attack; the cost must grow linearly). The names
// use `-` only, so the figures compare with code that did not read `_` as
// `-`.
func BenchmarkHeadersToRemove(b *testing.B) {
	d := allowAs(decision.HeaderUser, decision.HeaderRole, decision.HeaderCustomer)
	for _, n := range []int{0, 1000, 40000} {
		sent := map[string]string{"authorization": "Bearer x", "content-type": "application/json"}
		for _, name := range forgedNames(n, false) {
			sent[name] = "forged"
		}
		b.Run(fmt.Sprintf("forged=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = d.HeadersToRemove(maps.Keys(sent))
			}
		})
	}
}

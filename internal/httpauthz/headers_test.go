package httpauthz_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/httpauthz"
)

// allowAlice answers every request with an allow that sets the user, role
// and customer headers, as the policy does for a plain allow.
type allowAlice struct{}

func (allowAlice) Check(context.Context, *engine.Request) engine.Result {
	return engine.Result{Decision: decision.Decision{Allowed: true, Status: 200, Reason: decision.ReasonAllowed, Headers: []decision.Header{
		{Name: decision.HeaderUser, Value: "alice@contoso.example"},
		{Name: decision.HeaderRole, Value: "company-owner"},
		{Name: decision.HeaderCustomer, Value: "contoso"},
	}}}
}

// TestForgedHeaderSpellingsRemoved: in the HTTP mode, every client header
// that is x-tenantgate-* with `_` read as `-` is listed in
// x-envoy-auth-headers-to-remove, lower-case, in the spelling it was sent.
// The request is written byte for byte on a real connection, so the names
// reach the server exactly as a client spelt them.
func TestForgedHeaderSpellingsRemoved(t *testing.T) {
	srv := httptest.NewServer(httpauthz.New(allowAlice{}))
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /authz/api/v1/customers/contoso/users HTTP/1.1\r\n" +
		"Host: tenantgate\r\n" +
		"Authorization: Bearer t\r\n" +
		"x-tenantgate-user: overwritten, not removed\r\n" +
		"x_tenantgate_user: forged\r\n" +
		"X-Tenantgate_Role: forged\r\n" +
		"X_TENANTGATE-CUSTOMER: forged\r\n" +
		"x_tenantgate_locations: forged\r\n" +
		"X-Tenantgate-Computers: forged\r\n" +
		"x_tenantgate_dry_run_deny: forged\r\n" +
		"X-Tenantgate-Tenant: forged\r\n" +
		"x-TENANTGATE-tenant: forged twice\r\n" +
		"x_tenantgate_admin: forged\r\n" +
		"X-Forwarded-Proto: not ours\r\n" +
		"X_Tenantgatex: not ours\r\n" +
		"Connection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := strings.Split(resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"), ",")
	slices.Sort(got)
	want := []string{
		// Always, whatever was sent: the names tenantgate may set but did not.
		decision.HeaderReason, decision.HeaderLocations, decision.HeaderComputers, decision.HeaderDryRunDeny,
		// Sent, in their own spelling, once.
		"x_tenantgate_user", "x-tenantgate_role", "x_tenantgate-customer", "x_tenantgate_locations",
		"x_tenantgate_dry_run_deny", "x-tenantgate-tenant", "x_tenantgate_admin",
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("x-envoy-auth-headers-to-remove\n got %q\nwant %q", got, want)
	}
	for _, name := range []string{"X-Tenantgate-User", "X-Tenantgate-Role", "X-Tenantgate-Customer"} {
		if len(resp.Header.Values(name)) != 1 {
			t.Errorf("%s: %q, want tenantgate's one value", name, resp.Header.Values(name))
		}
	}
}

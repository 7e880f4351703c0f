package extauthz_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
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

// startServer serves the Authorization API on loopback, with message limits
// large enough for a request of tens of thousands of headers.
func startServer(t *testing.T, checker engine.Checker) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(extauthz.NewCodec()), grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))
	authv3.RegisterAuthorizationServer(gs, extauthz.New(checker))
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkRequest is a GET as Envoy sends it, with the headers in `headers` or,
// with rawMap (encode_raw_headers), in `header_map`.
func checkRequest(headers map[string]string, rawMap bool) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/api/v1/customers/contoso/users"}
	if rawMap {
		h.HeaderMap = &corev3.HeaderMap{}
		for k, v := range headers {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
	} else {
		h.Headers = headers
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

// TestForgedHeaderSpellingsRemoved: over gRPC, every client header that is
// x-tenantgate-* with `_` read as `-` is in headers_to_remove, in the
// spelling it was sent, both from `headers` and from `header_map`.
func TestForgedHeaderSpellingsRemoved(t *testing.T) {
	client := startServer(t, allowAlice{})
	forged := map[string]string{
		"authorization":             "Bearer t",
		"x-tenantgate-user":         "overwritten, not removed",
		"x_tenantgate_user":         "forged",
		"x-tenantgate_role":         "forged",
		"x_tenantgate-customer":     "forged",
		"x_tenantgate_locations":    "forged",
		"x-tenantgate-computers":    "forged",
		"x_tenantgate_dry_run_deny": "forged",
		"x_tenantgate_reason":       "forged",
		"x-tenantgate-tenant":       "forged",
		"x_tenantgate_admin":        "forged",
		"x-forwarded-uri":           "not ours",
		"x_tenantgatex":             "not ours",
	}
	want := []string{
		// Always, whatever was sent: the names tenantgate may set but did not.
		decision.HeaderReason, decision.HeaderLocations, decision.HeaderComputers, decision.HeaderDryRunDeny,
		// Sent, in their own spelling.
		"x_tenantgate_user", "x-tenantgate_role", "x_tenantgate-customer", "x_tenantgate_locations",
		"x_tenantgate_dry_run_deny", "x_tenantgate_reason", "x-tenantgate-tenant", "x_tenantgate_admin",
	}
	slices.Sort(want)
	for _, rawMap := range []bool{false, true} {
		t.Run(fmt.Sprintf("header_map=%v", rawMap), func(t *testing.T) {
			resp, err := client.Check(context.Background(), checkRequest(forged, rawMap))
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(slices.Values(resp.GetOkResponse().GetHeadersToRemove()))
			if !slices.Equal(got, want) {
				t.Errorf("headers_to_remove\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestManyForgedHeaders: a request with 40,000 distinct forged
// x-tenantgate-* headers is answered, with each listed once. Building the
// list used to be quadratic (8 s for this request on a development machine,
// 14 s on a loaded one), far past any ext_authz timeout; it is linear now
// (BenchmarkHeadersToRemove in internal/decision has the figures). The
// deadline is no speed measurement: it is 20 times the decision path's
// 0.25 s Envoy timeout, there only so the old behaviour fails instead of
// hanging.
func TestManyForgedHeaders(t *testing.T) {
	client := startServer(t, allowAlice{})
	const n = 40000
	headers := map[string]string{"authorization": "Bearer t"}
	for i := range n {
		// `-` spellings only: the old code ignored `_` ones, and this must
		// measure the list, not that gap.
		headers[fmt.Sprintf("x-tenantgate-forged-%06d", i)] = "forged"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, checkRequest(headers, false))
	if err != nil {
		t.Fatalf("Check with %d forged headers: %v", n, err)
	}
	rm := resp.GetOkResponse().GetHeadersToRemove()
	if want := n + len(decision.HeaderNames) - 3; len(rm) != want {
		t.Errorf("%d headers to remove, want %d", len(rm), want)
	}
	seen := map[string]bool{}
	for _, name := range rm {
		if seen[name] {
			t.Fatalf("%s listed twice", name)
		}
		seen[name] = true
	}
}

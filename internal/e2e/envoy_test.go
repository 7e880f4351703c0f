package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	yaml "go.yaml.in/yaml/v3"

	// The typed_config protos the bootstrap configs use, registered so
	// that protojson can resolve their Any fields.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/httpauthz"
	"github.com/tenantgate/tenantgate/internal/proxyconfig"
)

// loadBootstrap reads an Envoy bootstrap YAML the way Envoy does: YAML ->
// JSON -> the v3 Bootstrap proto, rejecting unknown fields.
func loadBootstrap(t *testing.T, name string, raw []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%s: to JSON: %v", name, err)
	}
	var bs bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &bs); err != nil {
		t.Fatalf("%s: not an Envoy v3 bootstrap: %v", name, err)
	}
	return &bs
}

type validator interface{ ValidateAll() error }

// checkProtos runs Envoy's validation rules (protoc-gen-validate) on msg
// and, since they stop at an Any, on every typed_config inside it,
// recursively; and it refuses deprecated fields, which a later Envoy drops.
func checkProtos(t *testing.T, where string, m protoreflect.Message) {
	t.Helper()
	if v, ok := m.Interface().(validator); ok {
		if err := v.ValidateAll(); err != nil {
			t.Errorf("%s: Envoy's validation: %v", where, err)
		}
	}
	walkFields(t, where, m)
}

// walkFields visits every field set in m: deprecated ones are errors, and
// each Any is unpacked (its type must be known) and checked as a whole.
func walkFields(t *testing.T, where string, m protoreflect.Message) {
	t.Helper()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		path := where + "." + string(fd.Name())
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
			t.Errorf("%s: deprecated field", path)
		}
		visit := func(p string, mv protoreflect.Message) {
			if a, ok := mv.Interface().(*anypb.Any); ok {
				inner, err := a.UnmarshalNew()
				if err != nil {
					t.Errorf("%s: typed_config %s: %v", p, a.GetTypeUrl(), err)
					return
				}
				checkProtos(t, p+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">", inner.ProtoReflect())
				return
			}
			walkFields(t, p, mv)
		}
		switch {
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					visit(path+"["+strconv.Itoa(i)+"]", l.Get(i).Message())
				}
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(path+"["+k.String()+"]", mv.Message())
					return true
				})
			}
		case fd.Message() != nil:
			visit(path, v.Message())
		}
		return true
	})
}

// unpack returns the message inside a typed_config.
func unpack[T any, PT interface {
	*T
	protoreflect.ProtoMessage
}](t *testing.T, a *anypb.Any) PT {
	t.Helper()
	var m PT = new(T)
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("typed_config %s: %v", a.GetTypeUrl(), err)
	}
	return m
}

// matches tells whether an Envoy ListStringMatcher (exact and prefix
// patterns, as these configs use) matches a lower-case header name.
func matches(l *matcherv3.ListStringMatcher, name string) bool {
	for _, p := range l.GetPatterns() {
		s, n := p.GetExact(), name
		if p.GetIgnoreCase() {
			s, n = strings.ToLower(s), strings.ToLower(n)
		}
		if _, ok := p.GetMatchPattern().(*matcherv3.StringMatcher_Exact); ok && n == s {
			return true
		}
		if pre, ok := p.GetMatchPattern().(*matcherv3.StringMatcher_Prefix); ok {
			pr := pre.Prefix
			if p.GetIgnoreCase() {
				pr = strings.ToLower(pr)
			}
			if strings.HasPrefix(n, pr) {
				return true
			}
		}
	}
	return false
}

// clusterAddr is the one endpoint of a static cluster, as host:port.
func clusterAddr(t *testing.T, bs *bootstrapv3.Bootstrap, name string) (string, *clusterv3.Cluster) {
	t.Helper()
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() != name {
			continue
		}
		var addrs []string
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				addrs = append(addrs, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
			}
		}
		if len(addrs) != 1 {
			t.Fatalf("cluster %s has endpoints %v, want exactly one", name, addrs)
		}
		// Envoy refuses a name in a STATIC cluster: a name needs DNS.
		host, _, _ := net.SplitHostPort(addrs[0])
		wantType := clusterv3.Cluster_STATIC
		if net.ParseIP(host) == nil {
			wantType = clusterv3.Cluster_STRICT_DNS
		}
		if got := c.GetType(); got != wantType {
			t.Errorf("cluster %s of %s is %v, want %v", name, addrs[0], got, wantType)
		}
		return addrs[0], c
	}
	t.Fatalf("no cluster named %q", name)
	return "", nil
}

// TestEnvoyConfigs parses what `tenantgate config envoy-grpc` and
// `envoy-http` print into Envoy's own protos, runs Envoy's validation rules
// on all of it, and checks what tenantgate relies on: the ext_authz filter
// before the router, pointed at tenantgate (by default at serve's default
// address), V3, failing closed, with a timeout, and the path normalized
// before anyone decides on it.
func TestEnvoyConfigs(t *testing.T) {
	flags := serveFlags(t)
	defaults := map[string]string{"grpc": flags["grpc-addr"].def, "http": flags["http-addr"].def}
	if defaults["grpc"] == "" || defaults["http"] == "" {
		t.Fatalf("tenantgate serve -h shows no default addresses: %+v", flags)
	}
	for _, tc := range []struct {
		name, kind, mode string
		params           proxyconfig.Params
		wantAddr         string // where the cluster points
		wantApp          string
	}{
		{"defaults", "envoy-grpc", "grpc", proxyconfig.Params{}, defaults["grpc"], "127.0.0.1:8000"},
		{"defaults", "envoy-http", "http", proxyconfig.Params{}, defaults["http"], "127.0.0.1:8000"},
		// tenantgate on every interface is reached on loopback; an app by
		// name makes a DNS cluster.
		{"custom", "envoy-grpc", "grpc", proxyconfig.Params{Listen: "127.0.0.1:9080", GRPCAddr: ":19191", Upstream: "portal.internal:3000"},
			"127.0.0.1:19191", "portal.internal:3000"},
		{"custom", "envoy-http", "http", proxyconfig.Params{Listen: "[::]:9080", HTTPAddr: "10.0.0.5:18181", Upstream: "[fd00::7]:3000"},
			"10.0.0.5:18181", "[fd00::7]:3000"},
	} {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			out, err := proxyconfig.Render(tc.kind, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			bs := loadBootstrap(t, tc.kind, out)
			checkProtos(t, "bootstrap", bs.ProtoReflect())
			if got, _ := clusterAddr(t, bs, "portal"); got != tc.wantApp {
				t.Errorf("cluster portal points at %s, want %s", got, tc.wantApp)
			}

			var hcms []*hcmv3.HttpConnectionManager
			for _, l := range bs.GetStaticResources().GetListeners() {
				for _, fc := range l.GetFilterChains() {
					for _, f := range fc.GetFilters() {
						if f.GetTypedConfig().MessageIs(&hcmv3.HttpConnectionManager{}) {
							hcms = append(hcms, unpack[hcmv3.HttpConnectionManager](t, f.GetTypedConfig()))
						}
					}
				}
			}
			if len(hcms) == 0 {
				t.Fatal("no http_connection_manager")
			}
			for i, hcm := range hcms {
				t.Run("hcm"+strconv.Itoa(i), func(t *testing.T) {
					if !hcm.GetNormalizePath().GetValue() {
						t.Error("normalize_path is not true")
					}
					if !hcm.GetMergeSlashes() {
						t.Error("merge_slashes is not true")
					}
					if got := hcm.GetPathWithEscapedSlashesAction(); got != hcmv3.HttpConnectionManager_REJECT_REQUEST {
						t.Errorf("path_with_escaped_slashes_action %v, want REJECT_REQUEST", got)
					}
					checkExtAuthz(t, bs, hcm, tc.mode, tc.wantAddr)
				})
			}
		})
	}
}

func checkExtAuthz(t *testing.T, bs *bootstrapv3.Bootstrap, hcm *hcmv3.HttpConnectionManager, mode, wantAddr string) {
	t.Helper()
	filters := hcm.GetHttpFilters()
	authzAt, routerAt := -1, -1
	var ea *extauthzv3.ExtAuthz
	for i, f := range filters {
		switch {
		case f.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{}):
			if ea != nil {
				t.Fatal("two ext_authz filters")
			}
			authzAt, ea = i, unpack[extauthzv3.ExtAuthz](t, f.GetTypedConfig())
		case f.GetName() == "envoy.filters.http.router":
			routerAt = i
		}
	}
	if ea == nil {
		t.Fatal("no ext_authz filter")
	}
	if routerAt != len(filters)-1 || authzAt > routerAt {
		t.Fatalf("ext_authz at %d, router at %d of %d: the router must be last, after ext_authz", authzAt, routerAt, len(filters))
	}
	if ea.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		t.Errorf("transport_api_version %v, want V3", ea.GetTransportApiVersion())
	}
	if ea.GetFailureModeAllow() {
		t.Error("failure_mode_allow is true: an unreachable tenantgate would allow everything")
	}
	if ea.GetWithRequestBody() != nil {
		t.Error("with_request_body is set: tenantgate never reads the body")
	}
	if s := ea.GetStatusOnError().GetCode(); s != typev3.StatusCode_ServiceUnavailable {
		t.Errorf("status_on_error %v, want ServiceUnavailable (retryable, as tenantgate's own internal_error)", s)
	}

	var cluster string
	var timeout time.Duration
	switch mode {
	case "grpc":
		gs := ea.GetGrpcService()
		if gs == nil {
			t.Fatal("no grpc_service")
		}
		cluster, timeout = gs.GetEnvoyGrpc().GetClusterName(), gs.GetTimeout().AsDuration()
	case "http":
		hs := ea.GetHttpService()
		if hs == nil {
			t.Fatal("no http_service")
		}
		cluster, timeout = hs.GetServerUri().GetCluster(), hs.GetServerUri().GetTimeout().AsDuration()
		if got, want := hs.GetServerUri().GetUri(), "http://"+wantAddr; got != want {
			t.Errorf("server_uri.uri %q, want %q", got, want)
		}
		if hs.GetPathPrefix() != httpauthz.Prefix {
			t.Errorf("path_prefix %q, want %q", hs.GetPathPrefix(), httpauthz.Prefix)
		}
		resp := hs.GetAuthorizationResponse()
		for _, h := range []string{decision.HeaderUser, decision.HeaderRole, decision.HeaderCustomer, decision.HeaderLocations, decision.HeaderComputers} {
			if !matches(resp.GetAllowedUpstreamHeaders(), h) {
				t.Errorf("allowed_upstream_headers does not pass %s to the upstream", h)
			}
		}
		for _, h := range []string{decision.HeaderReason, "www-authenticate", "content-type"} {
			if !matches(resp.GetAllowedClientHeaders(), h) {
				t.Errorf("allowed_client_headers does not pass %s to a denied client", h)
			}
		}
		// tenantgate must see the token, and the client's own
		// x-tenantgate-* headers, in every spelling, to have them removed.
		for _, h := range []string{"authorization", decision.HeaderLocations, "x-tenantgate-anything", "x_tenantgate_user", "x-tenantgate_role", "x_tenantgate-customer"} {
			if !matches(ea.GetAllowedHeaders(), h) {
				t.Errorf("allowed_headers does not send %s to tenantgate", h)
			}
		}
	}
	if timeout <= 0 {
		t.Error("no timeout for the check")
	}
	got, c := clusterAddr(t, bs, cluster)
	if got != wantAddr {
		t.Errorf("cluster %s points at %s, want %s", cluster, got, wantAddr)
	}
	if mode == "grpc" {
		a := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
		if a == nil || unpack[upstreamhttpv3.HttpProtocolOptions](t, a).GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			t.Errorf("cluster %s is not HTTP/2: gRPC needs it", cluster)
		}
	}
}

// envoyHeaders are the request headers Envoy sends in a CheckRequest for a
// request from curl, lower-cased, pseudo-headers included.
func envoyHeaders(method, path, token string, extra map[string]string) map[string]string {
	h := map[string]string{
		":authority":        "portal.example",
		":method":           method,
		":path":             path,
		":scheme":           "https",
		"accept":            "*/*",
		"user-agent":        "curl/8.5.0",
		"x-forwarded-for":   "203.0.113.7",
		"x-forwarded-proto": "https",
		"x-request-id":      "6f1d7c1e-3f0b-4c52-9a8e-2b7a0c4d5e6f",
	}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

func socketAddr(ip string, port uint32) *authv3.AttributeContext_Peer {
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}},
	}}}
}

// envoyCheckRequest builds a CheckRequest as Envoy's ext_authz filter
// does. raw is encode_raw_headers: true (header_map with raw_value)
// instead of the headers map.
func envoyCheckRequest(method, path string, headers map[string]string, raw bool) *authv3.CheckRequest {
	req := &authv3.AttributeContext_HttpRequest{
		Id:       "14021466383441718470",
		Method:   method,
		Path:     path,
		Host:     headers[":authority"],
		Scheme:   "https",
		Protocol: "HTTP/1.1",
	}
	if raw {
		hm := &corev3.HeaderMap{}
		for _, k := range slices.Sorted(maps.Keys(headers)) {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(headers[k])})
		}
		req.HeaderMap = hm
	} else {
		req.Headers = headers
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:          socketAddr("203.0.113.7", 53122),
		Destination:     socketAddr("10.0.0.5", 8080),
		Request:         &authv3.AttributeContext_Request{Time: timestamppb.Now(), Http: req},
		MetadataContext: &corev3.Metadata{},
	}}
}

// TestEnvoyCheckRequests drives tenantgate over real gRPC with
// CheckRequests shaped exactly as Envoy sends them, in both header forms,
// and checks the responses field by field.
func TestEnvoyCheckRequests(t *testing.T) {
	tg := startTenantgate(t)
	conn, err := grpc.NewClient(tg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)

	forgedLower := map[string]string{
		"x-tenantgate-user":      "owner@acme.example",
		"x-tenantgate-locations": "everywhere",
		"x-tenantgate-reason":    "allowed",
	}
	cases := []struct {
		name    string
		method  string
		path    string
		user    string
		extra   map[string]string
		status  int
		reason  string
		add     map[string]string // allow: headers added, exactly
		removed []string          // allow: headers_to_remove, sorted
	}{
		{name: "allow with query", method: "GET", path: "/api/v1/customers/contoso/users?page=2&sort=name", user: "alice@contoso.example",
			status: 200, add: map[string]string{"x-tenantgate-user": "alice@contoso.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso"}},
		{name: "allow with location scope", method: "GET", path: "/api/v1/customers/contoso/vbr-jobs?page=1", user: "bob@contoso.example",
			status: 200, add: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso", "x-tenantgate-locations": "hq"}},
		{name: "allow write", method: "POST", path: "/api/v1/customers/contoso/locations/hq/vbr-jobs", user: "bob@contoso.example",
			extra:  map[string]string{"content-type": "application/json", "content-length": "18"},
			status: 200, add: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso"}},
		{name: "forged headers removed or overwritten", method: "GET", path: "/api/v1/customers/contoso/users", user: "alice@contoso.example",
			extra:  forgedLower,
			status: 200, add: map[string]string{"x-tenantgate-user": "alice@contoso.example", "x-tenantgate-role": "company-owner", "x-tenantgate-customer": "contoso"},
			removed: []string{"x-tenantgate-locations", "x-tenantgate-reason"}},
		{name: "forged scope header overwritten", method: "GET", path: "/api/v1/customers/contoso/vbr-jobs", user: "bob@contoso.example",
			extra:  map[string]string{"x-tenantgate-locations": "everywhere"},
			status: 200, add: map[string]string{"x-tenantgate-user": "bob@contoso.example", "x-tenantgate-role": "company-administrator", "x-tenantgate-customer": "contoso", "x-tenantgate-locations": "hq"}},
		{name: "401 no token", method: "GET", path: "/api/v1/customers/contoso/users?x=1", status: 401, reason: "unauthenticated"},
		{name: "403 outside_tenant", method: "GET", path: "/api/v1/customers/northwind/users?page=2", user: "alice@contoso.example", status: 403, reason: "outside_tenant"},
		{name: "403 forged headers on a deny", method: "DELETE", path: "/api/v1/customers/contoso/users/alice%40contoso.example", user: "bob@contoso.example",
			extra: forgedLower, status: 403, reason: "role_forbids"},
		{name: "400 bad_path", method: "GET", path: "/api/v1/customers/contoso/%2e%2e/northwind/users?x=1", user: "alice@contoso.example", status: 400, reason: "bad_path"},
	}
	wantCode := map[int]code.Code{400: code.Code_INVALID_ARGUMENT, 401: code.Code_UNAUTHENTICATED, 403: code.Code_PERMISSION_DENIED}
	for _, form := range []string{"headers", "header_map"} {
		for _, tc := range cases {
			t.Run(form+"/"+tc.name, func(t *testing.T) {
				token := ""
				if tc.user != "" {
					token = tg.token(tc.user)
				}
				req := envoyCheckRequest(tc.method, tc.path, envoyHeaders(tc.method, tc.path, token, tc.extra), form == "header_map")
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				resp, err := client.Check(ctx, req)
				if err != nil {
					t.Fatalf("Check returned an RPC error (never allowed): %v", err)
				}
				if tc.status == 200 {
					checkOK(t, resp, tc.add, tc.removed)
					return
				}
				checkDenied(t, resp, tc.status, tc.reason, wantCode[tc.status])
			})
		}
	}
}

func checkOK(t *testing.T, resp *authv3.CheckResponse, add map[string]string, removed []string) {
	t.Helper()
	if resp.GetStatus().GetCode() != int32(code.Code_OK) {
		t.Fatalf("status %v, want OK (denied: %v)", resp.GetStatus(), resp.GetDeniedResponse())
	}
	ok := resp.GetOkResponse()
	if ok == nil {
		t.Fatalf("no ok_response: %v", resp)
	}
	got := map[string]string{}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append_action %v, want OVERWRITE_IF_EXISTS_OR_ADD (Envoy appends by default)", h.GetHeader().GetKey(), h.GetAppendAction())
		}
		if _, dup := got[h.GetHeader().GetKey()]; dup {
			t.Errorf("header %s added twice", h.GetHeader().GetKey())
		}
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	if fmt.Sprint(got) != fmt.Sprint(add) {
		t.Errorf("headers %v, want %v", got, add)
	}
	// Every tenantgate header the decision did not set is removed, whether
	// or not the client sent it, plus any other x-tenantgate-* it sent.
	want := slices.Clone(removed)
	for _, name := range decision.HeaderNames {
		if _, set := add[name]; !set && !slices.Contains(want, name) {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	rm := slices.Sorted(slices.Values(ok.GetHeadersToRemove()))
	if !slices.Equal(rm, want) {
		t.Errorf("headers_to_remove %v, want %v", rm, want)
	}
	if len(ok.GetResponseHeadersToAdd()) != 0 || len(ok.GetQueryParametersToSet()) != 0 || len(ok.GetQueryParametersToRemove()) != 0 {
		t.Errorf("unexpected response mutations: %v", ok)
	}
}

func checkDenied(t *testing.T, resp *authv3.CheckResponse, status int, reason string, grpcCode code.Code) {
	t.Helper()
	if resp.GetStatus().GetCode() != int32(grpcCode) {
		t.Errorf("status code %v, want %v", code.Code(resp.GetStatus().GetCode()), grpcCode)
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("no denied_response: %v", resp)
	}
	if d.GetStatus().GetCode() != typev3.StatusCode(status) {
		t.Errorf("HTTP status %v, want %d", d.GetStatus().GetCode(), status)
	}
	got := map[string]string{}
	for _, h := range d.GetHeaders() {
		got[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	want := map[string]string{decision.HeaderReason: reason, "content-type": "application/json"}
	if status == 401 {
		want["www-authenticate"] = "Bearer"
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("denied headers %v, want %v", got, want)
	}
	dec := decision.Decision{Status: status, Reason: reason}
	if d.GetBody() != string(dec.Body()) {
		t.Errorf("body %q, want %q", d.GetBody(), dec.Body())
	}
}

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/proxyconfig"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// manifest is one YAML document of what `tenantgate config istio` and
// `tenantgate config kubernetes` print.
type manifest struct {
	file string // the kind of config that printed it
	doc  map[string]any
}

func (m manifest) kind() string { return str(m.doc, "kind") }
func (m manifest) name() string { return str(m.doc, "metadata", "name") }

// get walks a decoded YAML document by map keys; nil when a key is missing
// or a value on the way is not a map.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any, keys ...string) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v any, keys ...string) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

// renderManifests decodes every document `tenantgate config istio` and
// `tenantgate config kubernetes` print with these parameters (the same
// --grpc-addr goes to both, as a user must give it).
func renderManifests(t *testing.T, k8s proxyconfig.Params) []manifest {
	t.Helper()
	var out []manifest
	for _, kind := range []string{"istio", "kubernetes"} {
		p := k8s
		if kind == "istio" {
			p = proxyconfig.Params{GRPCAddr: k8s.GRPCAddr}
		}
		raw, err := proxyconfig.Render(kind, p)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", kind, i, err)
			}
			if doc == nil {
				continue // an empty document (a trailing ---)
			}
			m := manifest{file: kind, doc: doc}
			if str(doc, "apiVersion") == "" || m.kind() == "" || m.name() == "" {
				t.Errorf("%s: document %d has no apiVersion, kind or metadata.name", kind, i)
			}
			out = append(out, m)
		}
	}
	return out
}

// only returns the one manifest of a kind (and name, if given).
func only(t *testing.T, ms []manifest, kind, name string) manifest {
	t.Helper()
	var found []manifest
	for _, m := range ms {
		if m.kind() == kind && (name == "" || m.name() == name) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d manifests of kind %s named %q, want 1", len(found), kind, name)
	}
	return found[0]
}

// containerFlags parses a container's args: `serve` then --name=value flags.
func containerFlags(t *testing.T, c any) map[string]string {
	t.Helper()
	args := list(c, "args")
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("tenantgate container args %v: want serve first", args)
	}
	flags := map[string]string{}
	for _, a := range args[1:] {
		s, _ := a.(string)
		name, value, ok := strings.Cut(strings.TrimLeft(s, "-"), "=")
		if !strings.HasPrefix(s, "-") || !ok {
			t.Errorf("container arg %q: write flags as --name=value", s)
			continue
		}
		flags[name] = value
	}
	return flags
}

// TestKubernetesExamples parses every YAML document `tenantgate config
// istio` and `kubernetes` print, with the defaults and with every flag set,
// and checks that the pieces fit: the AuthorizationPolicy's provider is the
// meshConfig's, which reaches the sidecar's gRPC address; the sidecar's
// flags exist in `tenantgate serve -h`; its data, policies and secret come
// from the ConfigMaps and the Secret mounted where the flags say; and the
// tenant data in the ConfigMap is valid.
func TestKubernetesExamples(t *testing.T) {
	serve := serveFlags(t)
	for _, tc := range []struct {
		name string
		p    proxyconfig.Params
	}{
		{"defaults", proxyconfig.Params{}},
		{"custom", proxyconfig.Params{Namespace: "shop", Image: "ghcr.io/acme/tenantgate:1.4", AppImage: "ghcr.io/acme/shop:2",
			AppPort: "3000", GRPCAddr: "127.0.0.1:19191", HTTPAddr: "127.0.0.1:18181", AdminAddr: ":9090"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkKubernetes(t, renderManifests(t, tc.p), serve, tc.p.Namespace) })
	}
}

func checkKubernetes(t *testing.T, ms []manifest, serve map[string]serveFlag, namespace string) {
	if namespace == "" {
		namespace = "portal"
	}
	for _, m := range ms {
		if ns := str(m.doc, "metadata", "namespace"); m.kind() != "IstioOperator" && ns != namespace {
			t.Errorf("%s %s is in namespace %q, want %q", m.kind(), m.name(), ns, namespace)
		}
	}
	dep := only(t, ms, "Deployment", "portal")
	pod := get(dep.doc, "spec", "template", "spec")
	var tg any
	for _, c := range list(pod, "containers") {
		if str(c, "name") == "tenantgate" {
			tg = c
		}
	}
	if tg == nil {
		t.Fatal("the portal Deployment has no tenantgate container")
	}
	flags := containerFlags(t, tg)

	// mountOf finds the volume mounted at dir, and returns its source:
	// ("configMap", name) or ("secret", name).
	mountOf := func(t *testing.T, dir string) (string, string) {
		t.Helper()
		for _, vm := range list(tg, "volumeMounts") {
			if path.Clean(str(vm, "mountPath")) != path.Clean(dir) {
				continue
			}
			if str(vm, "subPath") != "" {
				t.Errorf("%s is mounted with subPath: the kubelet never updates such a mount", dir)
			}
			for _, v := range list(pod, "volumes") {
				if str(v, "name") != str(vm, "name") {
					continue
				}
				if n := str(v, "configMap", "name"); n != "" {
					return "configMap", n
				}
				if n := str(v, "secret", "secretName"); n != "" {
					return "secret", n
				}
			}
		}
		t.Fatalf("nothing is mounted at %s", dir)
		return "", ""
	}

	t.Run("flags exist", func(t *testing.T) {
		for name := range flags {
			if _, ok := serve[name]; !ok {
				t.Errorf("--%s is not a flag of tenantgate serve", name)
			}
		}
		for _, name := range []string{"data", "policies", "grpc-addr"} {
			if flags[name] == "" {
				t.Errorf("the container does not set --%s", name)
			}
		}
		if flags["jwt-hs256-secret-file"] == "" && flags["oidc-issuer"] == "" && flags["jwks-url"] == "" {
			t.Error("the container sets no token keys (--oidc-issuer, --jwks-url or --jwt-hs256-secret-file)")
		}
	})

	t.Run("data from a ConfigMap", func(t *testing.T) {
		kind, name := mountOf(t, flags["data"])
		if kind != "configMap" {
			t.Fatalf("--data %s is a %s, want a ConfigMap (kubectl edit configmap is the hot edit)", flags["data"], kind)
		}
		cm := only(t, ms, "ConfigMap", name)
		data, _ := get(cm.doc, "data").(map[string]any)
		var files []tenant.File
		for key, content := range data {
			if !strings.HasSuffix(key, ".yaml") && !strings.HasSuffix(key, ".yml") {
				t.Errorf("ConfigMap %s key %q: tenantgate reads only *.yaml and *.yml", name, key)
			}
			s, _ := content.(string)
			files = append(files, tenant.File{Name: cm.file + ":" + name + "/" + key, Content: []byte(s)})
		}
		if len(files) == 0 {
			t.Fatalf("ConfigMap %s has no data", name)
		}
		if _, err := tenant.Load(files); err != nil {
			t.Errorf("the tenant data in ConfigMap %s is invalid: %v", name, err)
		}
	})

	t.Run("policies from another ConfigMap", func(t *testing.T) {
		kind, name := mountOf(t, flags["policies"])
		_, dataName := mountOf(t, flags["data"])
		if kind != "configMap" || name == dataName {
			t.Errorf("--policies %s is %s %s, want a ConfigMap of its own", flags["policies"], kind, name)
		}
	})

	t.Run("identity provider", func(t *testing.T) {
		iss := flags["oidc-issuer"]
		if iss == "" {
			return // keys from a secret file, checked below
		}
		if !strings.HasPrefix(iss, "https://") || flags["jwt-audience"] == "" {
			t.Errorf("--oidc-issuer %q, --jwt-audience %q: want an https issuer and an audience", iss, flags["jwt-audience"])
		}
	})

	t.Run("secret from a Secret", func(t *testing.T) {
		if flags["jwt-hs256-secret-file"] == "" {
			return // keys from the identity provider, checked above
		}
		kind, _ := mountOf(t, path.Dir(flags["jwt-hs256-secret-file"]))
		if kind != "secret" {
			t.Errorf("--jwt-hs256-secret-file %s is in a %s, want a Secret", flags["jwt-hs256-secret-file"], kind)
		}
	})

	t.Run("istio sends every portal request to tenantgate", func(t *testing.T) {
		ap := only(t, ms, "AuthorizationPolicy", "")
		var portal any
		for _, c := range list(pod, "containers") {
			if str(c, "name") == "portal" {
				portal = c
			}
		}
		ports := list(portal, "ports")
		if len(ports) != 1 {
			t.Fatalf("the portal container has ports %v, want one", ports)
		}
		portalPort, _ := get(ports[0], "containerPort").(int)
		svc := only(t, ms, "Service", "portal")
		for _, sp := range list(svc.doc, "spec", "ports") {
			if tp := get(sp, "targetPort"); tp != str(ports[0], "name") && tp != portalPort {
				t.Errorf("Service portal targets %v, not the portal container's port %d", tp, portalPort)
			}
		}
		_, adminPort, _ := net.SplitHostPort(flags["admin-addr"])
		admin, _ := strconv.Atoi(adminPort)
		// Every path, any case, any host and method, on the portal's port:
		// /API/... and /api are no_route from tenantgate, and on every path
		// a client's x-tenantgate-* headers are stripped.
		for _, r := range []istioRequest{
			{portalPort, "GET", "portal.example", "/api/v1/customers/contoso/users"},
			{portalPort, "GET", "portal.example", "/API/v1/customers/contoso/users"},
			{portalPort, "DELETE", "portal.example", "/Api/v1/customers/contoso/users/alice%40contoso.example"},
			{portalPort, "GET", "portal.example", "/api"},
			{portalPort, "GET", "portal.example", "/api/"},
			{portalPort, "GET", "PORTAL.example:80", "/"},
			{portalPort, "POST", "10.0.0.7", "/login"},
			{portalPort, "get", "", "/static/app.js?v=1"},
		} {
			if !policyMatches(t, ap, r) {
				t.Errorf("%s %s%s on port %d does not go to tenantgate", r.method, r.host, r.path, r.port)
			}
		}
		// tenantgate's admin listener (probes, metrics) is no decision.
		if r := (istioRequest{admin, "GET", "", "/metrics"}); policyMatches(t, ap, r) {
			t.Errorf("GET /metrics on tenantgate's admin port %d goes to tenantgate: it would be no_route", admin)
		}
	})

	t.Run("istio provider reaches the sidecar", func(t *testing.T) {
		ap := only(t, ms, "AuthorizationPolicy", "")
		if got := str(ap.doc, "spec", "action"); got != "CUSTOM" {
			t.Errorf("AuthorizationPolicy action %q, want CUSTOM", got)
		}
		provider := str(ap.doc, "spec", "provider", "name")
		podLabels, _ := get(dep.doc, "spec", "template", "metadata", "labels").(map[string]any)
		sel, _ := get(ap.doc, "spec", "selector", "matchLabels").(map[string]any)
		if len(sel) == 0 {
			t.Error("the AuthorizationPolicy selects no workload")
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("the AuthorizationPolicy selects %s=%v, which the portal pods do not have", k, v)
			}
		}

		mesh := only(t, ms, "IstioOperator", "")
		var grpcProvider any
		var names []string
		for _, p := range list(mesh.doc, "spec", "meshConfig", "extensionProviders") {
			names = append(names, str(p, "name"))
			if str(p, "name") == provider {
				grpcProvider = get(p, "envoyExtAuthzGrpc")
			}
		}
		if grpcProvider == nil {
			t.Fatalf("the AuthorizationPolicy names provider %q; the meshConfig has %v (with envoyExtAuthzGrpc)", provider, names)
		}
		if fo, _ := get(grpcProvider, "failOpen").(bool); fo {
			t.Error("failOpen is true: an unreachable tenantgate would allow everything")
		}
		if str(grpcProvider, "timeout") == "" {
			t.Error("the provider has no timeout")
		}
		port, _ := get(grpcProvider, "port").(int)

		host, grpcPort, err := net.SplitHostPort(flags["grpc-addr"])
		if err != nil {
			t.Fatalf("--grpc-addr %q: %v", flags["grpc-addr"], err)
		}
		if host != "127.0.0.1" {
			t.Errorf("--grpc-addr %s: want loopback, the pod's Envoy is the only client", flags["grpc-addr"])
		}
		if h, _, _ := net.SplitHostPort(flags["http-addr"]); flags["http-addr"] != "" && h != "127.0.0.1" {
			t.Errorf("--http-addr %s: want loopback", flags["http-addr"])
		}
		// Every probe reaches the admin listener (the kubelet calls the pod
		// IP, and the decision listeners are on loopback) on a path it serves.
		_, adminPort, err := net.SplitHostPort(flags["admin-addr"])
		if err != nil {
			t.Fatalf("--admin-addr %q: %v (the probes need it)", flags["admin-addr"], err)
		}
		portNumber := func(p any) string {
			if n, ok := p.(int); ok {
				return strconv.Itoa(n)
			}
			for _, cp := range list(tg, "ports") {
				if str(cp, "name") == p {
					n, _ := get(cp, "containerPort").(int)
					return strconv.Itoa(n)
				}
			}
			return fmt.Sprint(p)
		}
		for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/readyz"} {
			hg := get(tg, probe, "httpGet")
			if hg == nil {
				t.Errorf("the tenantgate container has no %s.httpGet", probe)
				continue
			}
			if got := portNumber(get(hg, "port")); got != adminPort || str(hg, "path") != path {
				t.Errorf("%s: GET %s on port %s, want %s on the --admin-addr port %s", probe, str(hg, "path"), got, path, adminPort)
			}
		}

		// The provider's service is a ServiceEntry host resolving to the
		// pod's own loopback, on the sidecar's gRPC port.
		service := str(grpcProvider, "service")
		var se manifest
		for _, m := range ms {
			if m.kind() == "ServiceEntry" && slices.Contains(list(m.doc, "spec", "hosts"), any(service)) {
				se = m
			}
		}
		if se.doc == nil {
			t.Fatalf("no ServiceEntry for the provider's service %q", service)
		}
		var addrs []string
		for _, e := range list(se.doc, "spec", "endpoints") {
			addrs = append(addrs, str(e, "address"))
		}
		if !slices.Equal(addrs, []string{host}) {
			t.Errorf("ServiceEntry %s endpoints %v, want [%s] (the sidecar)", se.name(), addrs, host)
		}
		var sePorts []int
		for _, p := range list(se.doc, "spec", "ports") {
			n, _ := get(p, "number").(int)
			sePorts = append(sePorts, n)
			if str(p, "protocol") != "GRPC" {
				t.Errorf("ServiceEntry port %d protocol %q, want GRPC", n, str(p, "protocol"))
			}
		}
		want, err := strconv.Atoi(grpcPort)
		if err != nil {
			t.Fatalf("--grpc-addr %q: %v", flags["grpc-addr"], err)
		}
		if port != want || !slices.Equal(sePorts, []int{want}) {
			t.Errorf("provider port %d, ServiceEntry ports %v, --grpc-addr port %d: all must be the same", port, sePorts, want)
		}
	})
}

// istioRequest is what an AuthorizationPolicy operation can match on.
type istioRequest struct {
	port         int
	method, host string
	path         string // as sent, query included: Istio matches the path without it
}

// policyMatches evaluates an AuthorizationPolicy's rules on a request as
// Istio does: a rule matches when each of its parts does, an operation when
// each field it has does (paths case-sensitive, hosts not; "*" alone, a
// leading or a trailing "*" are wildcards). A rule with from or when depends
// on the caller, which a policy that must send every request to tenantgate
// has no business doing: that fails the test.
func policyMatches(t *testing.T, ap manifest, r istioRequest) bool {
	t.Helper()
	path, _, _ := strings.Cut(r.path, "?")
	for i, rule := range list(ap.doc, "spec", "rules") {
		if get(rule, "from") != nil || get(rule, "when") != nil {
			t.Errorf("%s: rule %d has from or when: some callers would not be checked", ap.file, i)
		}
		tos := list(rule, "to")
		if len(tos) == 0 {
			return true // an empty rule matches every request
		}
		for _, to := range tos {
			op, _ := get(to, "operation").(map[string]any)
			ok := true
			for field, values := range op {
				vals := list(op, field)
				var m bool
				switch strings.TrimPrefix(field, "not") {
				case "Ports", "ports":
					m = slices.ContainsFunc(vals, func(v any) bool { return fmt.Sprint(v) == strconv.Itoa(r.port) })
				case "Methods", "methods":
					m = slices.ContainsFunc(vals, func(v any) bool { return istioMatch(fmt.Sprint(v), r.method) })
				case "Hosts", "hosts":
					m = slices.ContainsFunc(vals, func(v any) bool { return istioMatch(strings.ToLower(fmt.Sprint(v)), strings.ToLower(r.host)) })
				case "Paths", "paths":
					m = slices.ContainsFunc(vals, func(v any) bool { return istioMatch(fmt.Sprint(v), path) })
				default:
					t.Fatalf("%s: operation field %s (%v) is not understood by this test", ap.file, field, values)
				}
				if strings.HasPrefix(field, "not") {
					m = !m
				}
				ok = ok && m
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// istioMatch is Istio's string match: exact, "*", "prefix*" or "*suffix".
func istioMatch(pattern, s string) bool {
	switch {
	case pattern == "*":
		return s != ""
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(s, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(s, strings.TrimPrefix(pattern, "*"))
	default:
		return s == pattern
	}
}

// TestIstioPortalRequests: what the shipped AuthorizationPolicy now sends to
// tenantgate, answered by a real tenantgate over gRPC as Istio's Envoy asks
// it: paths outside /api/* in any case are no_route, and on an allow the
// client's x-tenantgate-* headers, in every spelling, are removed.
func TestIstioPortalRequests(t *testing.T) {
	ap := only(t, renderManifests(t, proxyconfig.Params{}), "AuthorizationPolicy", "")
	tg := startTenantgate(t)
	conn, err := grpc.NewClient(tg.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)

	// Envoy lower-cases header names; the `_` spellings it passes on as is.
	forged := map[string]string{}
	for name, v := range forgedEverySpelling {
		if decision.IsTenantgateHeader(name) {
			forged[strings.ToLower(name)] = v
		}
	}
	alice := tg.token("alice@contoso.example")
	for _, tc := range []struct {
		method, path string
		reason       string
	}{
		{"GET", "/API/v1/customers/contoso/users", decision.ReasonNoRoute},
		{"GET", "/Api/v1/customers/contoso/users", decision.ReasonNoRoute},
		{"GET", "/api", decision.ReasonNoRoute},
		{"GET", "/", decision.ReasonNoRoute},
		{"GET", "/index.html", decision.ReasonNoRoute},
		{"GET", "/api/v1/customers/contoso/users", decision.ReasonAllowed},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			if !policyMatches(t, ap, istioRequest{8000, tc.method, "portal.example", tc.path}) {
				t.Fatalf("the AuthorizationPolicy does not send %s %s to tenantgate", tc.method, tc.path)
			}
			req := envoyCheckRequest(tc.method, tc.path, envoyHeaders(tc.method, tc.path, alice, forged), false)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := client.Check(ctx, req)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tc.reason != decision.ReasonAllowed {
				checkDenied(t, resp, 403, tc.reason, code.Code_PERMISSION_DENIED)
				return
			}
			rm := resp.GetOkResponse().GetHeadersToRemove()
			set := map[string]bool{}
			for _, h := range resp.GetOkResponse().GetHeaders() {
				set[h.GetHeader().GetKey()] = true
			}
			for name := range forged {
				if !set[name] && !slices.Contains(rm, name) {
					t.Errorf("forged %s is neither overwritten nor removed (headers_to_remove %q)", name, rm)
				}
			}
		})
	}
}

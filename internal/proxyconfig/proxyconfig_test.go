package proxyconfig

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// checkYAML decodes every document of a YAML config: the templates'
// quoting must hold for every value that passes the checks.
func checkYAML(t *testing.T, out []byte) int {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(out))
	n := 0
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("not YAML: %v\n%s", err, out)
		}
		n++
	}
}

func render(t *testing.T, kind string, p Params) string {
	t.Helper()
	out, err := Render(kind, p)
	if err != nil {
		t.Fatalf("Render(%s): %v", kind, err)
	}
	if strings.Contains(string(out), "<no value>") {
		t.Fatalf("Render(%s) left a value out:\n%s", kind, out)
	}
	if strings.HasSuffix(mustKind(t, kind).File, ".yaml") && checkYAML(t, out) == 0 {
		t.Fatalf("Render(%s): no YAML document", kind)
	}
	return string(out)
}

func mustKind(t *testing.T, name string) Kind {
	t.Helper()
	k, ok := Lookup(name)
	if !ok {
		t.Fatalf("no kind %s", name)
	}
	return k
}

// TestRenderDefaults: every kind renders with no parameters at all, at
// tenantgate serve's default addresses, and names the command that printed
// it with every default spelt out.
func TestRenderDefaults(t *testing.T) {
	want := map[string][]string{
		"nginx": {
			"# Printed by: tenantgate config nginx --listen 0.0.0.0:8080 --http-addr 127.0.0.1:8181 --upstream 127.0.0.1:8000 --dir /tmp/tenantgate-nginx\n",
			"pid /tmp/tenantgate-nginx/nginx.pid;", "server 127.0.0.1:8181;", "server 127.0.0.1:8000;", "listen 0.0.0.0:8080;",
			"mkdir -p /tmp/tenantgate-nginx\n",
		},
		"caddy": {
			"# Printed by: tenantgate config caddy --listen 0.0.0.0:8080 --http-addr 127.0.0.1:8181 --upstream 127.0.0.1:8000\n",
			"http://:8080 {\n\tbind 0.0.0.0\n", "forward_auth 127.0.0.1:8181 {", "reverse_proxy 127.0.0.1:8000\n",
		},
		"envoy-grpc": {
			"# Printed by: tenantgate config envoy-grpc --listen 0.0.0.0:8080 --grpc-addr 127.0.0.1:9191 --upstream 127.0.0.1:8000\n",
			`socket_address: { address: "127.0.0.1", port_value: 9191 }`, `socket_address: { address: "0.0.0.0", port_value: 8080 }`,
			`socket_address: { address: "127.0.0.1", port_value: 8000 }`,
		},
		"envoy-http": {
			"# Printed by: tenantgate config envoy-http --listen 0.0.0.0:8080 --http-addr 127.0.0.1:8181 --upstream 127.0.0.1:8000\n",
			"uri: http://127.0.0.1:8181\n", `socket_address: { address: "127.0.0.1", port_value: 8181 }`,
		},
		"istio": {"# Printed by: tenantgate config istio --grpc-addr 127.0.0.1:9191\n", "port: 9191\n"},
		"kubernetes": {
			"# Printed by: tenantgate config kubernetes --namespace portal --image registry.example/tenantgate:latest --app-image registry.example/portal:1.0 --app-port 8000 --grpc-addr 127.0.0.1:9191 --http-addr 127.0.0.1:8181 --admin-addr 0.0.0.0:8282 --oidc-issuer https://keycloak.example/realms/portal --jwt-audience portal\n",
			"--grpc-addr=127.0.0.1:9191\n", "--admin-addr=0.0.0.0:8282\n", "containerPort: 8282\n", "namespace: portal\n", `ports: ["8000"]`,
		},
	}
	if len(want) != len(Kinds()) {
		t.Fatalf("%d kinds, %d tested", len(Kinds()), len(want))
	}
	for _, k := range Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			out := render(t, k.Name, Params{})
			for _, w := range want[k.Name] {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestRenderCustom: each flag's value lands where the kind uses it, and no
// default is left behind in its place.
func TestRenderCustom(t *testing.T) {
	cases := []struct {
		kind   string
		p      Params
		want   []string
		absent []string
	}{
		{"nginx", Params{Listen: "127.0.0.1:9080", HTTPAddr: "10.1.2.3:18181", Upstream: "app.internal:3000", Dir: "/var/lib/portal-nginx"},
			[]string{"listen 127.0.0.1:9080;", "server 10.1.2.3:18181;", "server app.internal:3000;", "error_log /var/lib/portal-nginx/error.log", "proxy_temp_path /var/lib/portal-nginx/proxy;"},
			[]string{"127.0.0.1:8181", "8080", "8000", "/tmp/tenantgate-nginx"}},
		{"caddy", Params{Listen: "[::1]:9443", HTTPAddr: "[::1]:18181", Upstream: "app.internal:3000"},
			[]string{"http://:9443 {\n\tbind ::1\n", "forward_auth [::1]:18181 {", "reverse_proxy app.internal:3000\n"},
			[]string{"127.0.0.1:8181", "8080", "8000"}},
		// A wildcard tenantgate address is reached on loopback; a name
		// makes a DNS cluster (Envoy refuses a name in a STATIC one).
		{"envoy-grpc", Params{Listen: ":9080", GRPCAddr: ":19191", Upstream: "app.internal:3000"},
			[]string{`address: "0.0.0.0", port_value: 9080`, `address: "127.0.0.1", port_value: 19191`, `address: "app.internal", port_value: 3000`,
				"  - name: tenantgate\n    type: STATIC\n", "  - name: portal\n    type: STRICT_DNS\n"},
			[]string{"127.0.0.1:9191", "port_value: 9191", "8000"}},
		{"envoy-http", Params{HTTPAddr: "[::]:18181", Upstream: "10.0.0.9:3000"},
			[]string{"uri: http://[::1]:18181\n", `address: "::1", port_value: 18181`, `address: "10.0.0.9", port_value: 3000`,
				"  - name: portal\n    type: STATIC\n"},
			[]string{"127.0.0.1:8181", "8000"}},
		{"istio", Params{GRPCAddr: "127.0.0.1:19191"}, []string{"port: 19191\n"}, []string{"port: 9191\n"}},
		{"kubernetes", Params{Namespace: "shop", Image: "ghcr.io/acme/tenantgate:1.4", AppImage: "ghcr.io/acme/shop@sha256:abc", AppPort: "3000",
			GRPCAddr: "127.0.0.1:19191", HTTPAddr: "127.0.0.1:18181", AdminAddr: ":9090",
			Issuer: "https://login.acme.example/realms/shop", Audience: "shop-portal"},
			[]string{"--oidc-issuer=https://login.acme.example/realms/shop\n", "--jwt-audience=shop-portal\n", "namespace: shop\n", "kubectl create namespace shop\n", "image: ghcr.io/acme/tenantgate:1.4 ", "image: ghcr.io/acme/shop@sha256:abc ",
				"containerPort: 3000\n", `ports: ["3000"]`, "--grpc-addr=127.0.0.1:19191\n", "number: 19191\n", "--http-addr=127.0.0.1:18181\n",
				"--admin-addr=0.0.0.0:9090\n", "containerPort: 9090\n"},
			[]string{"namespace: portal", "127.0.0.1:9191", "127.0.0.1:8181", "8282", "registry.example", "keycloak.example"}},
	}
	for _, tc := range cases {
		t.Run(tc.kind, func(t *testing.T) {
			out := render(t, tc.kind, tc.p)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("still holds %q:\n%s", a, out)
				}
			}
		})
	}
}

// TestRenderErrors: a value that would not work, or would break out of its
// place in the config's syntax, is refused with the flag's name.
func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name, kind string
		p          Params
		want       string
	}{
		{"port alone", "nginx", Params{HTTPAddr: "8181"}, `--http-addr "8181": not host:port; want host:port (e.g. 127.0.0.1:8181)`},
		{"unix socket", "caddy", Params{HTTPAddr: "unix:///run/tg.sock"}, "--http-addr \"unix:///run/tg.sock\": a Unix socket"},
		{"port zero", "envoy-grpc", Params{GRPCAddr: "127.0.0.1:0"}, `--grpc-addr: port "0": want a number from 1 to 65535`},
		{"port too big", "envoy-http", Params{Listen: "0.0.0.0:70000"}, `--listen: port "70000"`},
		{"named port", "envoy-http", Params{Upstream: "app:http"}, `--upstream: port "http"`},
		{"syntax in a host", "nginx", Params{Upstream: "app;evil:80"}, `--upstream "app;evil:80": the host is neither`},
		{"ipv6 zone", "caddy", Params{Listen: "[fe80::1%eth0]:80"}, "--listen \"[fe80::1%eth0]:80\": an IPv6 zone"},
		{"relative dir", "nginx", Params{Dir: "tmp/nginx"}, `--dir "tmp/nginx": want a clean absolute path`},
		{"dir with a space", "nginx", Params{Dir: "/tmp/my nginx"}, `--dir "/tmp/my nginx"`},
		{"dir not clean", "nginx", Params{Dir: "/tmp/nginx/"}, `--dir "/tmp/nginx/"`},
		{"namespace", "kubernetes", Params{Namespace: "Portal"}, `--namespace "Portal": want a Kubernetes name`},
		{"image", "kubernetes", Params{Image: "tenantgate latest"}, `--image "tenantgate latest": want an image reference`},
		{"app port", "kubernetes", Params{AppPort: "http"}, `--app-port: port "http"`},
		{"issuer not https", "kubernetes", Params{Issuer: "http://idp.example"}, `--oidc-issuer "http://idp.example": want an https URL`},
		{"issuer breaking YAML", "kubernetes", Params{Issuer: "https://idp.example/x\"\n- evil"}, `--oidc-issuer`},
		{"audience", "kubernetes", Params{Audience: "a b"}, `--jwt-audience "a b": want an audience`},
		{"app port clash", "kubernetes", Params{AppPort: "8181"}, "--http-addr port 8181 is also --app-port"},
		{"sidecar off loopback", "kubernetes", Params{GRPCAddr: "0.0.0.0:9191"}, "kubernetes: --grpc-addr 0.0.0.0:9191: tenantgate is a sidecar"},
		{"sidecar named", "istio", Params{GRPCAddr: "tenantgate:9191"}, "istio: --grpc-addr tenantgate:9191: tenantgate is a sidecar"},
		{"http off loopback", "kubernetes", Params{HTTPAddr: "10.0.0.1:8181"}, "kubernetes: --http-addr 10.0.0.1:8181: keep the HTTP mode on loopback"},
		{"probes on loopback", "kubernetes", Params{AdminAddr: "127.0.0.1:8282"}, "kubernetes: --admin-addr 127.0.0.1:8282: the kubelet probes the pod IP"},
		{"not this kind's", "caddy", Params{Dir: "/tmp/x"}, "--dir is not a parameter of caddy (only of nginx)"},
		{"not this kind's either", "istio", Params{Upstream: "127.0.0.1:8000"}, "--upstream is not a parameter of istio (only of nginx, caddy, envoy-grpc, envoy-http)"},
		{"unknown kind", "traefik", Params{}, `unknown config "traefik": want one of nginx, caddy, envoy-grpc, envoy-http, istio, kubernetes`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.kind, tc.p)
			if err == nil {
				t.Fatalf("no error; rendered:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParams: every parameter has a default and a usage and is read by some
// kind; a kind lists each of its parameters once.
func TestParams(t *testing.T) {
	used := map[string]bool{}
	for _, k := range Kinds() {
		if k.Summary == "" || k.File == "" {
			t.Errorf("%s: no summary or file name", k.Name)
		}
		seen := map[string]bool{}
		for _, p := range k.Params() {
			if seen[p.Flag] {
				t.Errorf("%s lists --%s twice", k.Name, p.Flag)
			}
			seen[p.Flag], used[p.Flag] = true, true
		}
	}
	for _, p := range params {
		if p.Default == "" || p.Usage == "" {
			t.Errorf("--%s: no default or usage", p.Flag)
		}
		if !used[p.Flag] {
			t.Errorf("--%s: no kind reads it", p.Flag)
		}
	}
}

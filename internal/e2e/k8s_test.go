package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// manifest is one YAML document of testdata/k8s.
type manifest struct {
	file string
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

// readManifests decodes every document of every YAML file in dir.
func readManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no YAML in %s (%v)", dir, err)
	}
	var out []manifest
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fh.Close()
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if doc == nil {
				continue // an empty document (a trailing ---)
			}
			m := manifest{file: filepath.Base(f), doc: doc}
			if str(doc, "apiVersion") == "" || m.kind() == "" || m.name() == "" {
				t.Errorf("%s: document %d has no apiVersion, kind or metadata.name", f, i)
			}
			out = append(out, m)
		}
		fh.Close()
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

// TestKubernetesExamples parses every YAML document in testdata/k8s and
// checks that the pieces fit: the AuthorizationPolicy's provider is the
// meshConfig's, which reaches the sidecar's gRPC address; the sidecar's
// flags exist in `tenantgate serve -h`; its data, policies and secret come
// from the ConfigMaps and the Secret mounted where the flags say; and the
// tenant data in the ConfigMap is valid.
func TestKubernetesExamples(t *testing.T) {
	ms := readManifests(t, filepath.Join("testdata", "k8s"))
	serve := serveFlags(t)

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
		for _, name := range []string{"data", "policies", "jwt-hs256-secret-file", "grpc-addr"} {
			if flags[name] == "" {
				t.Errorf("the container does not set --%s", name)
			}
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

	t.Run("secret from a Secret", func(t *testing.T) {
		kind, _ := mountOf(t, path.Dir(flags["jwt-hs256-secret-file"]))
		if kind != "secret" {
			t.Errorf("--jwt-hs256-secret-file %s is in a %s, want a Secret", flags["jwt-hs256-secret-file"], kind)
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

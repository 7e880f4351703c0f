// Package proxyconfig renders the proxy and cluster configurations that put
// tenantgate in front of an app: nginx (auth_request), Caddy (forward_auth),
// Envoy (ext_authz over gRPC or HTTP), Istio and Kubernetes. `tenantgate
// config KIND` prints them, and internal/e2e runs the very same output
// through real nginx and Caddy, Envoy's protos and the Kubernetes checks, so
// what a user copies is what the tests run.
package proxyconfig

import (
	"bytes"
	"embed"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// tenantgate serve's default addresses; cmd/tenantgate's tests check that
// serve still uses them.
const (
	DefaultGRPCAddr = "127.0.0.1:9191"
	DefaultHTTPAddr = "127.0.0.1:8181"
)

// Params fill a configuration. Each kind reads only some of them (see
// Kind.Params); an empty field takes its parameter's default.
type Params struct {
	GRPCAddr  string // tenantgate serve --grpc-addr
	HTTPAddr  string // tenantgate serve --http-addr
	AdminAddr string // tenantgate serve --admin-addr (kubernetes: the probes)
	Listen    string // host:port the proxy listens on
	Upstream  string // host:port of the protected app
	Dir       string // nginx: the directory of its pid file, logs and temp files
	Namespace string // kubernetes
	Image     string // kubernetes: tenantgate's image
	AppImage  string // kubernetes: the app's image
	AppPort   string // kubernetes: the app container's port
	Issuer    string // kubernetes: tenantgate serve --oidc-issuer
	Audience  string // kubernetes: tenantgate serve --jwt-audience
}

// Param is one parameter, as the flag that sets it.
type Param struct {
	Flag    string
	Default string
	Usage   string
	field   func(*Params) *string
}

// Field is the Params field this parameter sets, for flag.StringVar.
func (p Param) Field(ps *Params) *string { return p.field(ps) }

var params = []Param{
	{"listen", "0.0.0.0:8080", "host:port the proxy listens on (clients connect here)",
		func(p *Params) *string { return &p.Listen }},
	{"grpc-addr", DefaultGRPCAddr, "tenantgate serve --grpc-addr (host:port; an empty or 0.0.0.0 host is reached on 127.0.0.1)",
		func(p *Params) *string { return &p.GRPCAddr }},
	{"http-addr", DefaultHTTPAddr, "tenantgate serve --http-addr (host:port; an empty or 0.0.0.0 host is reached on 127.0.0.1)",
		func(p *Params) *string { return &p.HTTPAddr }},
	{"admin-addr", "0.0.0.0:8282", "tenantgate serve --admin-addr: health and metrics on the pod IP, for the kubelet's probes",
		func(p *Params) *string { return &p.AdminAddr }},
	{"upstream", "127.0.0.1:8000", "host:port of the app tenantgate protects",
		func(p *Params) *string { return &p.Upstream }},
	{"dir", "/tmp/tenantgate-nginx", "absolute directory for nginx's pid file, logs and temp files (create it first)",
		func(p *Params) *string { return &p.Dir }},
	{"namespace", "portal", "Kubernetes namespace of the app and its tenantgate sidecar",
		func(p *Params) *string { return &p.Namespace }},
	{"image", "registry.example/tenantgate:latest", "tenantgate's container image (your build of ./cmd/tenantgate)",
		func(p *Params) *string { return &p.Image }},
	{"app-image", "registry.example/portal:1.0", "the app's container image",
		func(p *Params) *string { return &p.AppImage }},
	{"app-port", "8000", "the port the app's container listens on",
		func(p *Params) *string { return &p.AppPort }},
	{"oidc-issuer", "https://keycloak.example/realms/portal", "your identity provider's issuer URL (tenantgate serve --oidc-issuer: its discovery document names the JWKS)",
		func(p *Params) *string { return &p.Issuer }},
	{"jwt-audience", "portal", "the audience your provider puts in this portal's tokens (tenantgate serve --jwt-audience)",
		func(p *Params) *string { return &p.Audience }},
}

func param(flag string) Param {
	for _, p := range params {
		if p.Flag == flag {
			return p
		}
	}
	panic("proxyconfig: no parameter " + flag)
}

// Kind is one configuration `tenantgate config` prints.
type Kind struct {
	Name    string
	Summary string
	File    string // the file name the header's run command uses
	flags   []string
	tmpl    string
	check   func(d *data) error // rules of this kind beyond each value's own
}

// Params are the parameters this kind reads, in the order of its flags.
func (k Kind) Params() []Param {
	out := make([]Param, len(k.flags))
	for i, f := range k.flags {
		out[i] = param(f)
	}
	return out
}

var kinds = []Kind{
	{Name: "nginx", File: "nginx.conf", tmpl: "nginx.conf.tmpl",
		Summary: "nginx auth_request to tenantgate's HTTP mode",
		flags:   []string{"listen", "http-addr", "upstream", "dir"}},
	{Name: "caddy", File: "Caddyfile", tmpl: "Caddyfile.tmpl",
		Summary: "Caddy forward_auth to tenantgate's HTTP mode",
		flags:   []string{"listen", "http-addr", "upstream"}},
	{Name: "envoy-grpc", File: "envoy-grpc.yaml", tmpl: "envoy-grpc.yaml.tmpl",
		Summary: "Envoy bootstrap: ext_authz over gRPC",
		flags:   []string{"listen", "grpc-addr", "upstream"}},
	{Name: "envoy-http", File: "envoy-http.yaml", tmpl: "envoy-http.yaml.tmpl",
		Summary: "Envoy bootstrap: ext_authz over HTTP",
		flags:   []string{"listen", "http-addr", "upstream"}},
	{Name: "istio", File: "istio.yaml", tmpl: "istio.yaml.tmpl",
		Summary: "Istio mesh config: tenantgate as the mesh's ext_authz provider",
		flags:   []string{"grpc-addr"}, check: sidecarAddrs},
	{Name: "kubernetes", File: "portal.yaml", tmpl: "kubernetes.yaml.tmpl",
		Summary: "Kubernetes + Istio: the app with a tenantgate sidecar, its data and policy",
		flags:   []string{"namespace", "image", "app-image", "app-port", "grpc-addr", "http-addr", "admin-addr", "oidc-issuer", "jwt-audience"},
		check:   kubernetesAddrs},
}

// Kinds lists every configuration, in the order `tenantgate config -h` shows.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// Lookup finds a kind by name.
func Lookup(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

//go:embed templates/*.tmpl
var templateFS embed.FS

// templates are parsed once; a broken one fails every test of this package.
var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(templateFS, "templates/*.tmpl"))

// Addr is a checked host:port.
type Addr struct {
	Given string // as the flag gave it
	Host  string // as the proxy reaches it
	Port  int
	IP    bool // Host is an IP address (Envoy: a STATIC cluster), not a name (STRICT_DNS)
}

func (a Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(a.Port)) }

// Loopback tells whether the address was given as a loopback IP (not as
// a wildcard that the proxy reaches on loopback).
func (a Addr) Loopback() bool {
	host, _, _ := net.SplitHostPort(a.Given)
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// data is what the templates see.
type data struct {
	Command  string // the command that prints this very output
	Listen   Addr
	GRPC     Addr // where the proxy reaches tenantgate's gRPC listener
	HTTP     Addr // ... and its HTTP one
	Admin    Addr
	Upstream Addr
	Dir      string
	// Kubernetes.
	Namespace, Image, AppImage string
	AppPort                    int
	Issuer, Audience           string
}

// Render prints the configuration of kind filled with p. An unknown kind, a
// parameter the kind does not read, or a value that would not work is an
// error naming the flag.
func Render(kind string, p Params) ([]byte, error) {
	k, ok := Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("unknown config %q: want one of %s", kind, strings.Join(names(), ", "))
	}
	if err := checkUnused(k, &p); err != nil {
		return nil, err
	}
	cmd := []string{"tenantgate config " + k.Name}
	for _, prm := range k.Params() {
		v := prm.Field(&p)
		if *v == "" {
			*v = prm.Default
		}
		cmd = append(cmd, "--"+prm.Flag+" "+*v)
	}
	d, err := k.fill(p)
	if err != nil {
		return nil, err
	}
	d.Command = strings.Join(cmd, " ")
	if k.check != nil {
		if err := k.check(d); err != nil {
			return nil, fmt.Errorf("%s: %w", k.Name, err)
		}
	}
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, k.tmpl, d); err != nil {
		return nil, fmt.Errorf("%s: %w", k.Name, err)
	}
	return b.Bytes(), nil
}

func names() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.Name)
	}
	return out
}

// checkUnused refuses a value for a parameter the kind does not read: the
// caller meant something this config would silently leave out.
func checkUnused(k Kind, p *Params) error {
	for _, prm := range params {
		if *prm.Field(p) == "" || contains(k.flags, prm.Flag) {
			continue
		}
		var users []string
		for _, o := range kinds {
			if contains(o.flags, prm.Flag) {
				users = append(users, o.Name)
			}
		}
		return fmt.Errorf("--%s is not a parameter of %s (only of %s)", prm.Flag, k.Name, strings.Join(users, ", "))
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// fill checks each parameter the kind reads and converts it for the
// templates.
func (k Kind) fill(p Params) (*data, error) {
	d := &data{Dir: p.Dir, Namespace: p.Namespace, Image: p.Image, AppImage: p.AppImage, Issuer: p.Issuer, Audience: p.Audience}
	var err error
	for _, f := range k.flags {
		switch f {
		case "listen":
			d.Listen, err = parseAddr(f, p.Listen, false)
		case "grpc-addr":
			d.GRPC, err = parseAddr(f, p.GRPCAddr, true)
		case "http-addr":
			d.HTTP, err = parseAddr(f, p.HTTPAddr, true)
		case "admin-addr":
			d.Admin, err = parseAddr(f, p.AdminAddr, false)
		case "upstream":
			d.Upstream, err = parseAddr(f, p.Upstream, true)
		case "dir":
			err = checkDir(p.Dir)
		case "namespace":
			if !dnsLabel.MatchString(p.Namespace) || len(p.Namespace) > 63 {
				err = fmt.Errorf("--namespace %q: want a Kubernetes name: lower-case letters, digits and '-', at most 63 (e.g. portal)", p.Namespace)
			}
		case "image", "app-image":
			if !imageRef.MatchString(*param(f).Field(&p)) {
				err = fmt.Errorf("--%s %q: want an image reference (e.g. registry.example/tenantgate:1.0)", f, *param(f).Field(&p))
			}
		case "app-port":
			d.AppPort, err = parsePort(f, p.AppPort)
		case "oidc-issuer":
			if !issuerURL.MatchString(p.Issuer) {
				err = fmt.Errorf("--oidc-issuer %q: want an https URL (e.g. https://keycloak.example/realms/portal)", p.Issuer)
			}
		case "jwt-audience":
			if !audience.MatchString(p.Audience) {
				err = fmt.Errorf("--jwt-audience %q: want an audience of letters, digits and . _ : / - (e.g. portal)", p.Audience)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return d, nil
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	imageRef = regexp.MustCompile(`^[a-z0-9][A-Za-z0-9._/:@-]*$`)
	// issuerURL and audience keep to characters that need no quoting in
	// YAML, so no value can break out of its place in the manifest.
	issuerURL = regexp.MustCompile(`^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$`)
	audience  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)
	hostName  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	// dirPath keeps to characters that need no quoting in nginx's syntax.
	dirPath = regexp.MustCompile(`^/[A-Za-z0-9._/+-]*$`)
)

// parseAddr checks a host:port. For an address the proxy connects to
// (tenantgate's, the app's: connect), an empty or unspecified host means
// "listening everywhere", reached on loopback; for one that is listened on,
// an empty host is every interface. Only IP addresses and DNS names pass,
// so that no value can break out of its place in a config's syntax.
func parseAddr(flag, s string, connect bool) (Addr, error) {
	bad := func(why string) (Addr, error) {
		return Addr{}, fmt.Errorf("--%s %q: %s; want host:port (e.g. %s)", flag, s, why, param(flag).Default)
	}
	if strings.HasPrefix(s, "unix:") {
		return bad("a Unix socket cannot be rendered here")
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return bad("not host:port")
	}
	port, err := parsePort(flag, portStr)
	if err != nil {
		return Addr{}, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	a := Addr{Given: s, Host: host, Port: port}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && ip.Zone() != "":
		return bad("an IPv6 zone cannot be rendered")
	case err == nil:
		a.IP = true
		if connect && ip.IsUnspecified() {
			a.Host = "127.0.0.1"
			if ip.Is6() {
				a.Host = "::1"
			}
		}
	case !hostName.MatchString(host) || len(host) > 253:
		return bad("the host is neither an IP address nor a DNS name")
	}
	return a, nil
}

func parsePort(flag, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("--%s: port %q: want a number from 1 to 65535", flag, s)
	}
	return n, nil
}

func checkDir(dir string) error {
	if !dirPath.MatchString(dir) || path.Clean(dir) != dir {
		return fmt.Errorf("--dir %q: want a clean absolute path of letters, digits and ._/+- (e.g. /tmp/tenantgate-nginx)", dir)
	}
	return nil
}

// sidecarAddrs: in a mesh, each pod's Envoy asks the tenantgate beside it,
// on loopback.
func sidecarAddrs(d *data) error {
	if !d.GRPC.Loopback() {
		return fmt.Errorf("--grpc-addr %s: tenantgate is a sidecar its pod's Envoy reaches on loopback; want 127.0.0.1:PORT", d.GRPC.Given)
	}
	return nil
}

// kubernetesAddrs: decisions on loopback only (the pod's Envoy is the one
// client), health on every interface (the kubelet probes the pod IP).
func kubernetesAddrs(d *data) error {
	if err := sidecarAddrs(d); err != nil {
		return err
	}
	if !d.HTTP.Loopback() {
		return fmt.Errorf("--http-addr %s: keep the HTTP mode on loopback in a pod (e.g. 127.0.0.1:8181); --admin-addr serves the probes", d.HTTP.Given)
	}
	if d.Admin.Loopback() {
		return fmt.Errorf("--admin-addr %s: the kubelet probes the pod IP, which loopback does not serve; want 0.0.0.0:PORT", d.Admin.Given)
	}
	for _, a := range []struct {
		flag string
		port int
	}{{"grpc-addr", d.GRPC.Port}, {"http-addr", d.HTTP.Port}, {"admin-addr", d.Admin.Port}} {
		if a.port == d.AppPort {
			return fmt.Errorf("--%s port %d is also --app-port: the containers of a pod share its ports", a.flag, a.port)
		}
	}
	return nil
}

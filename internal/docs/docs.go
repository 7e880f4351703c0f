// Package docs holds tenantgate's reference, one Markdown topic per file,
// embedded in the binary so `tenantgate help TOPIC` prints it wherever the
// binary goes (a container has no README). The README is the first hour;
// these are the contract and the manual.
package docs

import (
	"embed"
	"strings"
)

//go:embed topics/*.md
var files embed.FS

// Topic is one reference page.
type Topic struct {
	Name    string // what `tenantgate help` takes
	Summary string // one line for the list
}

// Topics lists the pages in reading order: the contract first (what is
// decided), then running it, then working on it.
var Topics = []Topic{
	{"data", "the tenant data format: customers, users, ids, validation"},
	{"requests", "the request grammar, the resource catalog, the decision order and scopes"},
	{"paths", "the path checks that make a request bad_path"},
	{"identity", "bearer tokens: HS256 secret files, JWKS, claims"},
	{"http-mode", "the HTTP authorizer: /authz for Envoy http_service, nginx, Caddy, Traefik"},
	{"serve", "serving: flags, addresses, the admin address, caching, signals"},
	{"reload", "hot reload: watching, closed writes, last good versions, loading bounds"},
	{"tls", "TLS, mutual TLS and Unix sockets"},
	{"decision-log", "the decision log and dry-run mode"},
	{"operations", "health, /v1/status, metrics and logs"},
	{"proxies", "nginx, Caddy, Envoy, Istio and Kubernetes in front of tenantgate"},
	{"bundles", "signed OPA bundles: building and serving them"},
	{"policies", "for policy authors: the input document, tests, tables"},
	{"analysis", "explain, access, who-can and diff: why, what, who, and what an edit changes"},
	{"performance", "what a decision, a start and a reload cost, measured"},
	{"reliability", "soak, fuzzing, faults, limits and shutdown"},
	{"choices", "where the contract is silent: the choices tenantgate made"},
}

// Text returns a topic's Markdown, or false when there is no such topic.
func Text(name string) (string, bool) {
	if strings.ContainsAny(name, "/.\\") {
		return "", false
	}
	b, err := files.ReadFile("topics/" + name + ".md")
	if err != nil {
		return "", false
	}
	return string(b), true
}

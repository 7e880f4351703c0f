// Package httpauthz answers the decision over plain HTTP, for proxies that
// call an HTTP authorizer (tenantgate help http-mode): Envoy's http_service with
// path_prefix /authz, nginx auth_request, Caddy forward_auth, Traefik
// ForwardAuth. It only translates: HTTP request -> engine.Request, decision ->
// status, headers and body.
package httpauthz

import (
	"maps"
	"net/http"
	"strings"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
)

// Prefix is where the HTTP mode listens, and the path_prefix Envoy's
// http_service is configured with.
const Prefix = "/authz"

// envoyHeadersToRemove is how Envoy's http_service lets the authorizer remove
// request headers before the request goes upstream.
const envoyHeadersToRemove = "x-envoy-auth-headers-to-remove"

// Handler serves the HTTP mode.
type Handler struct {
	checker engine.Checker
}

// New returns the HTTP-mode handler; mount it at Prefix and Prefix+"/".
func New(checker engine.Checker) *Handler { return &Handler{checker: checker} }

// Matches reports whether a raw request target is for the HTTP mode:
// /authz, /authz?..., or /authz/<original path>.
func Matches(requestURI string) bool {
	rest, ok := strings.CutPrefix(requestURI, Prefix)
	return ok && (rest == "" || rest[0] == '/' || rest[0] == '?')
}

// Original extracts the proxied request's method and raw target:
//   - <METHOD> /authz/<path>: the request's own method, the raw target minus
//     /authz (undecoded, query kept), as Envoy's http_service sends it;
//   - /authz with X-Forwarded-Method and X-Forwarded-Uri (Caddy, Traefik) or
//     X-Original-Method and X-Original-URI (nginx).
//
// When neither form gives a target, the path is empty, which the path checks
// deny as bad_path. So is an ambiguous request: both header pairs present
// and disagreeing, or a header given twice. A proxy sets one pair; the other
// can only come from the client, and trusting whichever we read first would
// let a client whose proxy sets only X-Original-URI name another path in
// X-Forwarded-Uri.
func Original(r *http.Request) (method, target string) {
	raw := r.RequestURI
	if rest, ok := strings.CutPrefix(raw, Prefix); ok && strings.HasPrefix(rest, "/") {
		return r.Method, rest
	}
	fm, fu, fok := pair(r.Header, "X-Forwarded-Method", "X-Forwarded-Uri")
	om, ou, ook := pair(r.Header, "X-Original-Method", "X-Original-Uri")
	switch {
	case !fok || !ook:
		return "", ""
	case fu != "" && ou != "":
		if fm != om || fu != ou {
			return "", ""
		}
		return fm, fu
	case fu != "":
		return fm, fu
	default:
		return om, ou
	}
}

// pair reads a method/URI header pair; ok is false when either header was
// sent more than once (ambiguous, so never guessed at).
func pair(h http.Header, methodName, uriName string) (method, uri string, ok bool) {
	m, u := h.Values(methodName), h.Values(uriName)
	if len(m) > 1 || len(u) > 1 {
		return "", "", false
	}
	if len(m) == 1 {
		method = m[0]
	}
	if len(u) == 1 {
		uri = u[0]
	}
	return method, uri, true
}

// ServeHTTP answers 200 with the x-tenantgate-* headers on allow, and the
// decision's status, x-tenantgate-reason and JSON body on deny.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method, target := Original(r)
	req := engine.Request{Method: method, Path: target, Authorization: r.Header.Get("Authorization")}
	res := h.checker.Check(r.Context(), &req)
	Write(w, r.Header, res.Decision)
}

// Write writes a decision as the HTTP-mode response. reqHeader is the
// request's, to list the client's own x-tenantgate-* headers (any case, `_`
// read as `-`) for removal
// (Envoy honours x-envoy-auth-headers-to-remove; nginx and Caddy configs
// overwrite the headers instead).
func Write(w http.ResponseWriter, reqHeader http.Header, d decision.Decision) {
	out := w.Header()
	for _, hd := range d.Headers {
		out[http.CanonicalHeaderKey(hd.Name)] = []string{hd.Value}
	}
	out.Set("Cache-Control", "no-store")
	if d.Allowed {
		remove := d.HeadersToRemove(maps.Keys(reqHeader))
		if len(remove) > 0 {
			out.Set(envoyHeadersToRemove, strings.Join(remove, ","))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	out.Set("Content-Type", "application/json")
	w.WriteHeader(d.Status)
	_, _ = w.Write(d.Body())
}

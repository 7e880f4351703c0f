// Package e2e holds tenantgate's end-to-end tests behind real proxies, and
// the proxy configurations they run: nginx (auth_request) and Caddy
// (forward_auth) as child processes in front of an in-process tenantgate and
// a recording upstream; Envoy bootstrap configs checked against Envoy's own
// protos and validation rules, with CheckRequests shaped as Envoy sends them;
// and the Istio and Kubernetes examples. The configurations live in
// testdata/, and the README links them: each integration we document is one
// we run.
package e2e

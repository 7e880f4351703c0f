// Package e2e holds tenantgate's end-to-end tests behind real proxies, run on
// the configurations `tenantgate config` prints (internal/proxyconfig):
// nginx (auth_request) and Caddy (forward_auth) as child processes in front
// of an in-process tenantgate and a recording upstream, started as each
// config's header says; the Envoy bootstraps checked against Envoy's own
// protos and validation rules, with CheckRequests shaped as Envoy sends them;
// and the Istio and Kubernetes manifests, cross-checked and answered by a
// real tenantgate. Each integration we document is one we run.
package e2e

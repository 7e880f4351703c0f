package distribution

import (
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/devtools/fleet"
)

const fleet_KeyID = fleet.KeyID

// opaDocsFull is the example configuration of OPA's docs
// (docs/docs/configuration.md, OPA v1.22.2), as printed there.
const opaDocsFull = `services:
  acmecorp:
    url: https://example.com/control-plane-api/v1
    response_header_timeout_seconds: 5
    credentials:
      bearer:
        token: "bGFza2RqZmxha3NkamZsa2Fqc2Rsa2ZqYWtsc2RqZmtramRmYWxkc2tm"

labels:
  app: myapp
  region: west
  environment: production

bundles:
  authz:
    service: acmecorp
    resource: bundles/http/example/authz.tar.gz
    persist: true
    polling:
      min_delay_seconds: 60
      max_delay_seconds: 120
    signing:
      keyid: global_key
      scope: write

decision_logs:
  service: acmecorp
  reporting:
    min_delay_seconds: 300
    max_delay_seconds: 600

status:
  service: acmecorp

default_decision: /http/example/authz/allow

persistence_directory: /var/opa

keys:
  global_key:
    algorithm: RS256
    key: <PEM_encoded_public_key>
    scope: read

caching:
  inter_query_builtin_cache:
    max_size_bytes: 10000000
    forced_eviction_threshold_percentage: 70
    stale_entry_eviction_period_seconds: 3600

distributed_tracing:
  type: grpc
  address: localhost:4317
  service_name: opa
  sample_percentage: 50
  encryption: "off"
  exclude_paths:
    - /health**
  resource:
    service_namespace: "my-namespace"
    service_version: "1.1"
    service_instance_id: "1"
    deployment_environment: "prod"

server:
  decoding:
    max_length: 134217728
    gzip:
      max_length: 268435456
  encoding:
    gzip:
      min_length: 1024
      compression_level: 9
`

// opaDocsOCI is the OCI configuration of OPA's docs
// (docs/docs/management-bundles/index.md, "Spin up the policy with OPA CLI").
const opaDocsOCI = `services:
  ghcr-registry:
    url: https://ghcr.io
    type: oci
    credentials:
      bearer:
        scheme: "Bearer"
        token: "<mytoken>"

bundles:
  authz:
    service: ghcr-registry
    resource: ghcr.io/someorg/policy-hello:1.0.0
    persist: true
    polling:
      min_delay_seconds: 30
      max_delay_seconds: 120
`

// ociDocsConfig is opaDocsOCI pointed at a local registry: only the
// registry's address changes (no TLS on loopback, so http://).
func ociDocsConfig(addr string) string {
	s := strings.ReplaceAll(opaDocsOCI, "https://ghcr.io", "http://"+addr)
	return strings.ReplaceAll(s, "ghcr.io/", addr+"/")
}

// TestOPADocsConfigs: both configurations from OPA's docs are read
// unchanged, with OPA's meanings: the bundle, its polling, its signing key,
// the services' credentials, status and decision logs, and the sections
// tenantgate does not use named in warnings.
func TestOPADocsConfigs(t *testing.T) {
	c, err := Parse("configuration.md", []byte(opaDocsFull), quiet())
	if err != nil {
		t.Fatalf("OPA's example configuration: %v", err)
	}
	if c.BundleName != "authz" || c.Bundle.Service != "acmecorp" || c.Bundle.Resource != "bundles/http/example/authz.tar.gz" ||
		!c.Bundle.Persist || *c.Bundle.Polling.MaxDelaySeconds != 120 || !c.BundleSigned || c.Bundle.Signing.KeyID != "global_key" {
		t.Errorf("bundle: %s %+v", c.BundleName, c.Bundle)
	}
	if c.Status == nil || c.Logs == nil || c.PersistenceDir != "/var/opa" {
		t.Errorf("status %v, decision_logs %v, persistence %q", c.Status, c.Logs, c.PersistenceDir)
	}
	if l := c.Manager.Labels(); l["region"] != "west" || l["id"] == "" {
		t.Errorf("labels %v: want the configured ones and OPA's id", l)
	}
	if got := strings.Join(c.Warnings, "\n"); !strings.Contains(got, `"caching"`) || !strings.Contains(got, `"server"`) {
		t.Errorf("warnings %q: want caching and server named", got)
	}

	c, err = Parse("management-bundles", []byte(opaDocsOCI), quiet())
	if err != nil {
		t.Fatalf("OPA's OCI configuration: %v", err)
	}
	if c.Manager.Client(c.Bundle.Service).Config().Type != "oci" || c.Bundle.Resource != "ghcr.io/someorg/policy-hello:1.0.0" {
		t.Errorf("oci bundle: %+v", c.Bundle)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, cfg, want string }{
		{"two bundles", "services: {s: {url: 'http://x'}}\nbundles: {a: {service: s}, b: {service: s}}\n", "2 bundles (a, b)"},
		{"unknown service", "services: {s: {url: 'http://x'}}\nbundles: {a: {service: t}}\n", `invalid configuration for bundle "a"`},
		{"discovery", "services: {s: {url: 'http://x'}}\ndiscovery: {resource: /d}\n", "discovery: not supported"},
		{"file bundle", "bundles: {a: {resource: 'file:///b.tar.gz'}}\n", "--bundle FILE"},
		{"bad polling", "services: {s: {url: 'http://x'}}\nbundles: {a: {service: s, polling: {min_delay_seconds: 9, max_delay_seconds: 1}}}\n", "max polling delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.cfg), quiet())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "c.yaml") {
				t.Errorf("error %v, want it to name c.yaml and say %q", err, tc.want)
			}
		})
	}
}

// Package distribution brings a fleet of tenantgate sidecars their bundle
// the way OPA's own agents get theirs: from an OPA configuration file
// (services, bundles, keys, labels, decision_logs, status,
// persistence_directory), with OPA's own packages doing the work. OPA's
// config and plugin-manager packages parse the file and build the service
// clients (TLS, bearer tokens, OAuth2 client credentials, cloud
// credentials: plugins/rest); OPA's download package polls the bundle
// server (ETag and 304, long polling, backoff, size limits) or pulls it from
// an OCI registry, and OPA's bundle reader verifies its signature against
// the configured keys; OPA's status and decision-log plugins report to the
// control plane in OPA's formats. No OPA evaluation runs: the plugin manager
// is only the holder of the parsed configuration and the clients.
//
// What this package adds is the part that is tenantgate's: a downloaded
// bundle becomes a version of the engine's bundle source (Source), decoded
// and validated exactly as a bundle file is (internal/bundle.Decode), so a
// bundle that fails verification or validation changes nothing and the last
// good keeps serving; the last activated bundle is kept on disk when the
// bundle asks for persistence; and each bundle's state is shown in
// /v1/status and the metrics.
package distribution

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/config"
	"github.com/open-policy-agent/opa/v1/plugins"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/plugins/status"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// MaxConfigBytes bounds the configuration file: a real one is a few KiB.
const MaxConfigBytes = 1 << 20

// Config is an OPA configuration file as tenantgate uses it.
type Config struct {
	File string
	// Manager is OPA's plugin manager, made from the file: it holds the
	// parsed configuration, the labels, the keys and one rest client per
	// service. It is never started: it evaluates nothing.
	Manager *plugins.Manager
	// BundleName and Bundle are the one configured bundle ("": none).
	BundleName string
	Bundle     *bundleplugin.Source
	// BundleSigned is true when the bundle has a signing section: OPA then
	// refuses a bundle without a valid signature. Without one (even with
	// keys configured) OPA serves unsigned bundles.
	BundleSigned bool
	// Status and Logs are the status and decision_logs sections, parsed by
	// OPA's plugins (nil: not configured).
	Status *status.Config
	Logs   *logs.Config
	// PersistenceDir is persistence_directory, or OPA's default ($PWD/.opa).
	PersistenceDir string
	// Warnings name the sections tenantgate reads but does not act on.
	Warnings []string
}

// ignored are the top-level sections an OPA configuration may hold that
// mean nothing to tenantgate: accepted so that a config written for OPA
// works unchanged, and named in a warning so nobody thinks they act.
var ignored = []string{"caching", "default_decision", "default_authorization_decision", "distributed_tracing",
	"nd_builtin_cache", "server", "storage", "metrics_export"}

// envRegex is OPA's: ${NAME} in the file is replaced by the environment
// variable NAME when it is set, and kept as written when it is not
// (internal/config.subEnvVars in OPA, which is not importable).
var envRegex = regexp.MustCompile(`\${[\w_]+}`)

func subEnvVars(s string) string {
	return envRegex.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := os.LookupEnv(m[2 : len(m)-1]); ok {
			return v
		}
		return m
	})
}

// Load reads and checks an OPA configuration file (YAML or JSON). Every
// error names the file and the section.
func Load(path string, log *slog.Logger) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(raw) > MaxConfigBytes {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxConfigBytes)
	}
	return Parse(path, raw, log)
}

// Parse checks an OPA configuration held in memory; name is for errors.
func Parse(name string, raw []byte, log *slog.Logger) (*Config, error) {
	if log == nil {
		log = slog.Default()
	}
	raw = []byte(subEnvVars(string(raw)))
	errf := func(format string, args ...any) error {
		return fmt.Errorf("config %s: "+format, append([]any{name}, args...)...)
	}
	// Parsed once alone first, for the sections the manager does not check.
	parsed, err := config.ParseConfig(raw, "")
	if err != nil {
		return nil, errf("%w", err)
	}
	switch {
	case len(parsed.Discovery) > 0:
		return nil, errf("discovery: not supported by tenantgate (a discovery bundle would rewrite this configuration at run time); " +
			"put the bundle, status and decision_logs sections in the file itself")
	case len(parsed.Bundle) > 0:
		return nil, errf("bundle: the legacy single-bundle section is not supported; write it as bundles: {NAME: {service: ..., resource: ...}}")
	case len(parsed.Plugins) > 0:
		return nil, errf("plugins: OPA plugins cannot run inside tenantgate; remove the section")
	}
	c := &Config{File: name}
	for _, k := range ignored {
		if _, ok := sectionsOf(raw)[k]; ok {
			c.Warnings = append(c.Warnings, fmt.Sprintf("config %s: section %q is OPA's and tenantgate ignores it", name, k))
		}
	}
	ol := newOPALogger(log.With("component", "opa"))
	m, err := plugins.New(raw, instanceID(), inmem.New(), plugins.Logger(ol), plugins.ConsoleLogger(ol),
		plugins.WithEnableVersionCheck(false), plugins.WithEnableTelemetry(false))
	if err != nil {
		return nil, errf("%w", err)
	}
	c.Manager = m
	services := m.Services()
	if len(parsed.Bundles) > 0 {
		bc, err := bundleplugin.NewConfigBuilder().WithBytes(parsed.Bundles).WithServices(services).
			WithKeyConfigs(m.PublicKeys()).Parse()
		if err != nil {
			return nil, errf("bundles: %w", err)
		}
		if bc != nil && len(bc.Bundles) > 0 {
			if len(bc.Bundles) > 1 {
				var names []string
				for n := range bc.Bundles {
					names = append(names, n)
				}
				slices.Sort(names)
				return nil, errf("bundles: %d bundles (%s); tenantgate serves one bundle holding both its data and its policies", len(names), strings.Join(names, ", "))
			}
			for n, s := range bc.Bundles {
				c.BundleName, c.Bundle = n, s
			}
			var signing map[string]struct {
				Signing json.RawMessage `json:"signing"`
			}
			if err := util.Unmarshal(parsed.Bundles, &signing); err == nil {
				sg := signing[c.BundleName].Signing
				c.BundleSigned = len(sg) > 0 && string(sg) != "null"
			}
			if strings.HasPrefix(c.Bundle.Resource, "file://") {
				return nil, errf("bundles.%s: resource %s: a local bundle file is served with --bundle FILE", c.BundleName, c.Bundle.Resource)
			}
		}
	}
	pluginNames := []string{bundleplugin.Name, status.Name, logs.Name}
	if c.Status, err = status.NewConfigBuilder().WithBytes(parsed.Status).WithServices(services).WithPlugins(pluginNames).Parse(); err != nil {
		return nil, errf("status: %w", err)
	}
	if c.Logs, err = logs.NewConfigBuilder().WithBytes(parsed.DecisionLogs).WithServices(services).WithPlugins(pluginNames).
		WithLogger(ol).Parse(); err != nil {
		return nil, errf("decision_logs: %w", err)
	}
	if c.Logs != nil && c.Logs.Plugin != nil {
		return nil, errf("decision_logs.plugin: OPA plugins cannot run inside tenantgate; send the logs to a service")
	}
	if c.Status != nil && c.Status.Plugin != nil {
		return nil, errf("status.plugin: OPA plugins cannot run inside tenantgate; report to a service")
	}
	if c.PersistenceDir, err = parsed.GetPersistenceDirectory(); err != nil {
		return nil, errf("persistence_directory: %w", err)
	}
	if c.PersistenceDir, err = filepath.Abs(c.PersistenceDir); err != nil {
		return nil, errf("persistence_directory: %w", err)
	}
	return c, nil
}

// sectionsOf lists the top-level keys of the file, for the warnings.
func sectionsOf(raw []byte) map[string]any {
	var m map[string]any
	if err := utilUnmarshal(raw, &m); err != nil {
		return nil
	}
	return m
}

// instanceID is this process's id, as OPA gives each instance a fresh
// UUID: the status and decision-log services tell sidecars apart by it
// (labels.id).
func instanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ErrNoBundle is returned when a bundle is asked of a config without one.
var ErrNoBundle = errors.New("no bundle configured")

func utilUnmarshal(raw []byte, v any) error { return util.Unmarshal(raw, v) }

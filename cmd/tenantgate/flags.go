package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/decisionlog"
	"github.com/tenantgate/tenantgate/internal/distribution"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
)

type identityFlags struct {
	secretFile, jwksFile, issuer, audience string

	// A key set fetched from an identity provider (tenantgate help identity).
	jwksURL, oidcIssuer, caFile string
	insecureHTTP, skipIssCheck  bool
	remote                      identity.RemoteConfig // the intervals
	startTimeout                time.Duration
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.secretFile, "jwt-hs256-secret-file", "", "file holding the HS256 secret (one trailing newline is ignored)")
	fs.StringVar(&f.jwksFile, "jwks-file", "", "JWKS file with RS256/ES256/EdDSA public keys (hot-reloaded)")
	fs.StringVar(&f.issuer, "jwt-issuer", "", "required iss claim (unchecked when empty; with --oidc-issuer it defaults to the issuer)")
	fs.StringVar(&f.audience, "jwt-audience", "", "required aud claim (unchecked when empty)")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "https:// URL of the identity provider's JWKS (RS256/ES256/EdDSA keys), kept fresh")
	fs.StringVar(&f.oidcIssuer, "oidc-issuer", "", "OIDC issuer URL (e.g. https://keycloak.example/realms/portal): its /.well-known/openid-configuration names the JWKS URL, and tokens' iss must equal it")
	fs.BoolVar(&f.skipIssCheck, "oidc-skip-issuer-check", false, "with --oidc-issuer, do not check tokens' iss against it (--jwt-issuer still applies)")
	fs.StringVar(&f.caFile, "jwks-ca-file", "", "PEM CA bundle the provider's certificate must chain to (for an internal provider); empty: the system roots")
	fs.BoolVar(&f.insecureHTTP, "jwks-insecure-http", false, "allow http:// for --jwks-url/--oidc-issuer to a host that is not loopback (keys in clear text: tests only)")
	fs.DurationVar(&f.remote.MinRefresh, "jwks-refresh-min", identity.DefaultMinRefresh, "least time between two scheduled JWKS fetches; also the interval without a Cache-Control max-age, and the retry interval after a failed fetch")
	fs.DurationVar(&f.remote.MaxRefresh, "jwks-refresh-max", identity.DefaultMaxRefresh, "most time between two JWKS fetches, whatever the Cache-Control max-age says: a key removed at the provider is refused within it")
	fs.DurationVar(&f.remote.KidRefresh, "jwks-kid-refresh-interval", identity.DefaultKidRefresh, "least time between two JWKS fetches forced by tokens naming an unknown kid (a new key at the provider)")
	fs.DurationVar(&f.startTimeout, "jwks-start-timeout", identity.DefaultStartTimeout, "how long start-up waits for the first key set of --jwks-url/--oidc-issuer before it exits with the error")
}

// remoteFlags are the flags that mean nothing without --jwks-url or
// --oidc-issuer.
var remoteFlags = []string{"oidc-skip-issuer-check", "jwks-ca-file", "jwks-insecure-http", "jwks-refresh-min", "jwks-refresh-max", "jwks-kid-refresh-interval", "jwks-start-timeout"}

// remoteConfig checks the URL key set's flags and returns its config; ok is
// false without --jwks-url and --oidc-issuer.
func (f *identityFlags) remoteConfig(fs *flag.FlagSet, log *slog.Logger) (cfg identity.RemoteConfig, ok bool, err error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch {
	case f.jwksURL != "" && f.oidcIssuer != "":
		return cfg, false, errors.New("--jwks-url and --oidc-issuer both name the provider's keys: give one (--oidc-issuer finds the JWKS URL itself)")
	case f.jwksURL == "" && f.oidcIssuer == "":
		for _, n := range remoteFlags {
			if set[n] {
				return cfg, false, fmt.Errorf("--%s needs --jwks-url or --oidc-issuer", n)
			}
		}
		return cfg, false, nil
	case f.skipIssCheck && f.oidcIssuer == "":
		return cfg, false, errors.New("--oidc-skip-issuer-check needs --oidc-issuer")
	case f.startTimeout <= 0:
		return cfg, false, fmt.Errorf("--jwks-start-timeout %v: must be positive", f.startTimeout)
	case f.remote.MinRefresh < time.Second || f.remote.MaxRefresh < f.remote.MinRefresh:
		return cfg, false, fmt.Errorf("--jwks-refresh-min %v, --jwks-refresh-max %v: want at least 1s, and max not below min", f.remote.MinRefresh, f.remote.MaxRefresh)
	case f.remote.KidRefresh <= 0:
		return cfg, false, fmt.Errorf("--jwks-kid-refresh-interval %v: must be positive", f.remote.KidRefresh)
	}
	cfg = f.remote
	cfg.JWKSURL, cfg.Issuer, cfg.CAFile, cfg.Insecure, cfg.Logger = f.jwksURL, f.oidcIssuer, f.caFile, f.insecureHTTP, log
	return cfg, true, nil
}

// startRemote starts the URL key set, if one is configured, and waits for
// its first key set (--jwks-start-timeout). It returns nil without one.
func (f *identityFlags) startRemote(ctx context.Context, fs *flag.FlagSet, log *slog.Logger, met *metrics.Metrics, ident *identity.Config) (*identity.RemoteKeys, error) {
	cfg, ok, err := f.remoteConfig(fs, log)
	if err != nil || !ok {
		return nil, err
	}
	cfg.OnFetch = met.ObserveKeySet
	what := "--jwks-url " + f.jwksURL
	if f.oidcIssuer != "" {
		what = "--oidc-issuer " + f.oidcIssuer
	}
	log.Info("waiting for the identity provider's keys", "source", engine.SourceJWKSURL, "provider", what, "timeout", f.startTimeout)
	r, err := identity.StartRemote(ctx, cfg, f.startTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	ident.Remote = r
	if f.oidcIssuer != "" && f.issuer == "" && !f.skipIssCheck {
		ident.Issuer = r.Issuer()
	}
	return r, nil
}

func (f *identityFlags) config() identity.Config {
	return identity.Config{
		HS256SecretFile: f.secretFile,
		JWKSFile:        f.jwksFile,
		Issuer:          f.issuer,
		Audience:        f.audience,
		Leeway:          60 * time.Second,
	}
}

// warnings names the configurations that work but accept more tokens than an
// operator likely means to. An identity provider's keys (a JWKS) sign tokens
// for every application it serves; without an audience check, a token issued
// for another of them is accepted here. (A secret file is this portal's own.)
func (f *identityFlags) warnings() []string {
	var out []string
	if f.audience == "" {
		for _, fl := range []struct{ name, value string }{{"jwks-file", f.jwksFile}, {"jwks-url", f.jwksURL}, {"oidc-issuer", f.oidcIssuer}} {
			if fl.value != "" {
				out = append(out, "--"+fl.name+" without --jwt-audience: a token these keys signed for any application is accepted; set --jwt-audience to this portal's audience")
			}
		}
	}
	return out
}

// hasKeys reports whether any key source is configured.
func (f *identityFlags) hasKeys() bool {
	return f.secretFile != "" || f.jwksFile != "" || f.jwksURL != "" || f.oidcIssuer != ""
}

func (f *identityFlags) files() []string {
	var out []string
	for _, p := range []string{f.secretFile, f.jwksFile} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// bundleFlags select a signed OPA bundle (make bundle) instead of --data and
// --policies.
type bundleFlags struct {
	opts bundle.Options
}

// register adds the bundle flags; serving says whether the command keeps
// running (serve: the bundle and key are watched) or reads them once.
func (f *bundleFlags) register(fs *flag.FlagSet, serving bool) {
	reload := ""
	if serving {
		reload = " (hot-reloaded)"
	}
	fs.StringVar(&f.opts.Path, "bundle", "", "signed OPA bundle (.tar.gz, see make bundle) to read instead of --data and --policies"+reload)
	fs.StringVar(&f.opts.VerificationKey, "bundle-verification-key", "", "PEM public key (or certificate) the bundle's signature must verify with"+reload)
	fs.StringVar(&f.opts.KeyID, "bundle-verification-key-id", bundle.DefaultKeyID, "name of the verification key, as OPA's --verification-key-id")
	fs.StringVar(&f.opts.Algorithm, "bundle-verification-alg", bundle.DefaultAlgorithm, "signature algorithm of the verification key (RS256, PS256, ES256, EdDSA, ...)")
	fs.BoolVar(&f.opts.InsecureSkipVerification, "bundle-insecure-skip-verification", false, "read the bundle WITHOUT checking its signature (development only)")
}

// source returns the bundle source, or nil without --bundle. --bundle with
// --data or --policies, or a bundle flag without --bundle, is an error: the
// operator meant something else than what would be served.
func (f *bundleFlags) source(fs *flag.FlagSet, log *slog.Logger) (*bundle.Source, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.opts.Path == "" {
		for _, n := range []string{"bundle-verification-key", "bundle-verification-key-id", "bundle-verification-alg", "bundle-insecure-skip-verification"} {
			if set[n] {
				return nil, fmt.Errorf("--%s needs --bundle", n)
			}
		}
		return nil, nil
	}
	if set["data"] || set["policies"] {
		return nil, errors.New("--bundle holds the data and the policies: give either --bundle or --data/--policies, not both")
	}
	o := f.opts
	o.Logger = log
	switch {
	case o.VerificationKey == "" && !o.InsecureSkipVerification:
		return nil, fmt.Errorf("--bundle %s needs --bundle-verification-key FILE (the PEM public key its signature must verify with), "+
			"or, for development only, --bundle-insecure-skip-verification", o.Path)
	case o.VerificationKey != "":
		if _, err := os.Stat(o.VerificationKey); err != nil {
			return nil, fmt.Errorf("--bundle-verification-key %s: %w", o.VerificationKey, err)
		}
	}
	return bundle.New(o)
}

// tlsFlags serve both listeners over TLS, or mutual TLS with a client CA.
type tlsFlags struct{ files tlsconfig.Files }

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.files.CertFile, "tls-cert-file", "", "PEM server certificate (chain) for both listeners; with --tls-key-file turns TLS on (hot-reloaded)")
	fs.StringVar(&f.files.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file (hot-reloaded)")
	fs.StringVar(&f.files.ClientCAFile, "tls-client-ca-file", "", "PEM CA bundle: require client certificates signed by it (mutual TLS; hot-reloaded)")
}

// reloader returns nil when no TLS flag is set.
func (f *tlsFlags) reloader(log *slog.Logger) (*tlsconfig.Reloader, error) {
	if !f.files.Enabled() {
		return nil, nil
	}
	return tlsconfig.New(f.files, log)
}

// decisionLogFlags turn on the decision log and dry-run mode.
type decisionLogFlags struct {
	path     string
	maxSize  int64
	maxFiles int
	dryRun   bool
}

func (f *decisionLogFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "decision-log", "", "write one JSON line per decision to this file (appended, created 0640), or - for stdout; empty: off")
	fs.Int64Var(&f.maxSize, "decision-log-max-size", decisionlog.DefaultMaxSize, "size bound of a decision log file, in bytes (100 MiB = 104857600): a file that would grow past it is renamed PATH.1 (PATH.1 to PATH.2, ...) and a new one started; 0: no bound (rotate it with logrotate)")
	fs.IntVar(&f.maxFiles, "decision-log-max-files", decisionlog.DefaultMaxFiles, "rotated decision log files kept (PATH.1 ... PATH.N), the oldest removed; 0: none")
	fs.BoolVar(&f.dryRun, "dry-run", false, "allow every request; a deny is only logged (decision log dry_run: true) and sent upstream as x-tenantgate-dry-run-deny")
}

// open returns the decision log (nil when off), its metrics registered.
func (f *decisionLogFlags) open(log *slog.Logger, met *metrics.Metrics) (*decisionlog.Log, error) {
	if f.dryRun {
		log.Warn("dry-run mode: every request is allowed; denies are only logged")
		if f.path == "" {
			log.Warn("--dry-run without --decision-log: would-be denies show only in the x-tenantgate-dry-run-deny header sent upstream")
		}
	}
	opts, err := f.options(log)
	if err != nil {
		return nil, err
	}
	if f.path == "" {
		return nil, nil
	}
	if opts.MaxSize < 0 && f.path != decisionlog.Stdout {
		log.Warn("--decision-log-max-size 0: the decision log file is unbounded; rotate it with logrotate, or traffic can fill the disk", "file", f.path)
	}
	dlog, err := decisionlog.Open(f.path, opts)
	if err != nil {
		return nil, err
	}
	if err := dlog.Register(met.Registry()); err != nil {
		dlog.Close()
		return nil, err
	}
	return dlog, nil
}

// options are the decision log's options: the flags' 0 means none, where
// the Options' 0 means the default.
func (f *decisionLogFlags) options(log *slog.Logger) (decisionlog.Options, error) {
	if f.maxSize < 0 || f.maxFiles < 0 {
		return decisionlog.Options{}, fmt.Errorf("--decision-log-max-size %d, --decision-log-max-files %d: must not be negative", f.maxSize, f.maxFiles)
	}
	opts := decisionlog.Options{Logger: log, MaxSize: f.maxSize, MaxFiles: f.maxFiles}
	if f.maxSize == 0 {
		opts.MaxSize = -1
	}
	if f.maxFiles == 0 {
		opts.MaxFiles = -1
	}
	return opts, nil
}

// decisionLogStatus is the decision log's part of /v1/status: its failed
// writes and dropped lines since the start (the log says why).
func decisionLogStatus(path string, dlog *decisionlog.Log) func() any {
	return func() any {
		return struct {
			File    string `json:"file"`
			Errors  uint64 `json:"errors"`
			Dropped uint64 `json:"dropped"`
		}{path, dlog.Errors(), dlog.Dropped()}
	}
}

// checkAddr refuses a listen address that cannot work before anything is
// opened, with the fix in the message: "9191" alone is a common slip for
// "127.0.0.1:9191", and a socket in a directory that does not exist would
// otherwise surface as a bare "no such file or directory".
func checkAddr(flagName, addr string) error {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if path == "" {
			return fmt.Errorf("--%s %q: the socket path is empty; give unix:///path/to/tenantgate.sock", flagName, addr)
		}
		dir := filepath.Dir(path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("--%s %q: the socket's directory %s does not exist; create it (or mount a shared volume there) first", flagName, addr, dir)
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("--%s %q: want host:port (e.g. 127.0.0.1:9191, or :9191 for every interface) or unix:///path/to.sock", flagName, addr)
	}
	return nil
}

// checkDirs names the flag of a data or policies directory that is missing:
// the loader's own error would name only the path.
func checkDirs(d engine.Dirs) error {
	for _, c := range []struct{ flag, dir, holds string }{
		{"data", d.Data, "tenant data (*.yaml)"},
		{"policies", d.Policies, "policies (*.rego)"},
	} {
		if st, err := os.Stat(c.dir); err != nil || !st.IsDir() {
			return fmt.Errorf("--%s %s: not a directory; give the directory of %s (or --bundle)", c.flag, c.dir, c.holds)
		}
	}
	return nil
}

// configFlags read an OPA configuration file: a bundle from a server or an
// OCI registry, status and decision-log reporting (internal/distribution).
type configFlags struct {
	path           string
	startupTimeout time.Duration
}

func (f *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "config", "", "OPA configuration file (YAML or JSON): services, bundles, keys, labels, status, decision_logs, persistence_directory, with OPA's meanings (tenantgate help bundles)")
	fs.DurationVar(&f.startupTimeout, "bundle-startup-timeout", 2*time.Minute, "with a bundle in --config and nothing persisted: how long to wait for a first bundle to activate (/readyz 503 meanwhile) before exiting non-zero")
}

// load reads --config (nil without it) and refuses flags that contradict
// it: a configured bundle is the data and the policies, so --bundle,
// --data and --policies would name a second source.
func (f *configFlags) load(fs *flag.FlagSet, log *slog.Logger) (*distribution.Config, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.path == "" {
		if set["bundle-startup-timeout"] {
			return nil, errors.New("--bundle-startup-timeout needs --config with a bundle")
		}
		return nil, nil
	}
	if f.startupTimeout <= 0 {
		return nil, fmt.Errorf("--bundle-startup-timeout %v: must be positive", f.startupTimeout)
	}
	c, err := distribution.Load(f.path, log)
	if err != nil {
		return nil, err
	}
	for _, w := range c.Warnings {
		log.Warn(w)
	}
	if c.Bundle == nil {
		if set["bundle-startup-timeout"] {
			return nil, fmt.Errorf("--bundle-startup-timeout: --config %s configures no bundle", f.path)
		}
		return c, nil
	}
	for _, n := range []string{"bundle", "data", "policies"} {
		if set[n] {
			return nil, fmt.Errorf("--%s conflicts with --config %s: it configures bundle %q, which holds the data and the policies; "+
				"remove the flag, or the bundles section", n, f.path, c.BundleName)
		}
	}
	return c, nil
}

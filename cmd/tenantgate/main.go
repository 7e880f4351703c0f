// Command tenantgate is a policy-as-code external authorizer for Envoy's
// ext_authz (gRPC or HTTP), nginx auth_request, Caddy forward_auth and
// Traefik ForwardAuth. This file holds flags, wiring and signals only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/decisionlog"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/server"
	"github.com/tenantgate/tenantgate/internal/settle"
	"github.com/tenantgate/tenantgate/internal/tenant"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
)

const usage = `tenantgate: a multi-tenant external authorizer for Envoy, nginx, Caddy and Traefik.

Usage:
  tenantgate serve    [flags]   serve ext_authz over gRPC and the HTTP mode, hot-reloading data and policies
  tenantgate validate [flags]   validate tenant data (and compile the policies); print every error; exit 1 on any
  tenantgate check    [flags]   decide one request for a named user, no token needed
  tenantgate tables   [flags]   print the customer-type and role tables from the policy itself
  tenantgate token    [flags]   mint an HS256 development token from the secret file

Run 'tenantgate <command> -h' for a command's flags.
`

// exitError carries an exit code out of a subcommand.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "tenantgate:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest, stderr)
	case "validate":
		return validate(rest, stdout, stderr)
	case "check":
		return check(rest, stdout, stderr)
	case "tables":
		return tables(rest, stdout, stderr)
	case "token":
		return token(rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "tenantgate: unknown command %q\n\n%s", cmd, usage)
		return exitError{2}
	}
}

// newFlags returns a flag set whose -h prints a one-line summary first.
func newFlags(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tenantgate %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; -h is not an error (exit 0), a bad flag exits 2.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{0}
		}
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return exitError{2}
	}
	return nil
}

type identityFlags struct {
	secretFile, jwksFile, issuer, audience string
}

func (f *identityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.secretFile, "jwt-hs256-secret-file", "", "file holding the HS256 secret (one trailing newline is ignored)")
	fs.StringVar(&f.jwksFile, "jwks-file", "", "JWKS file with RS256/ES256/EdDSA public keys (hot-reloaded)")
	fs.StringVar(&f.issuer, "jwt-issuer", "", "required iss claim (unchecked when empty)")
	fs.StringVar(&f.audience, "jwt-audience", "", "required aud claim (unchecked when empty)")
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
	if f.jwksFile != "" && f.audience == "" {
		return []string{"--jwks-file without --jwt-audience: a token these keys signed for any application is accepted; set --jwt-audience to this portal's audience"}
	}
	return nil
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

func (f *bundleFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.opts.Path, "bundle", "", "signed OPA bundle (.tar.gz, see make bundle) to use instead of --data and --policies (hot-reloaded)")
	fs.StringVar(&f.opts.VerificationKey, "bundle-verification-key", "", "PEM public key (or certificate) the bundle's signature must verify with (hot-reloaded)")
	fs.StringVar(&f.opts.KeyID, "bundle-verification-key-id", bundle.DefaultKeyID, "name of the verification key, as OPA's --verification-key-id")
	fs.StringVar(&f.opts.Algorithm, "bundle-verification-alg", bundle.DefaultAlgorithm, "signature algorithm of the verification key (RS256, PS256, ES256, EdDSA, ...)")
	fs.BoolVar(&f.opts.InsecureSkipVerification, "bundle-insecure-skip-verification", false, "serve the bundle WITHOUT checking its signature (development only)")
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
	path   string
	dryRun bool
}

func (f *decisionLogFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "decision-log", "", "write one JSON line per decision to this file (appended, created 0640), or - for stdout; empty: off")
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
	if f.path == "" {
		return nil, nil
	}
	dlog, err := decisionlog.Open(f.path, decisionlog.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := dlog.Register(met.Registry()); err != nil {
		dlog.Close()
		return nil, err
	}
	return dlog, nil
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

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

func serve(args []string, stderr io.Writer) error {
	fs := newFlags("serve", "Serve envoy.service.auth.v3.Authorization/Check over gRPC and the HTTP mode (/authz),\n"+
		"with /healthz, /readyz, /metrics and /v1/status on the HTTP address. Data, policies and keys are\n"+
		"watched and hot-reloaded; a bad edit keeps the last good snapshot serving.", stderr)
	var (
		idf         identityFlags
		dirs        engine.Dirs
		grpcAddr    = fs.String("grpc-addr", "127.0.0.1:9191", "gRPC ext_authz address: host:port or unix:///path")
		httpAddr    = fs.String("http-addr", "127.0.0.1:8181", "HTTP mode and admin address: host:port or unix:///path (keep it reachable by the proxy only)")
		adminAddr   = fs.String("admin-addr", "", "optional plain-HTTP address serving only /healthz, /readyz, /metrics and /v1/status (never TLS, never decisions): for kubelet probes and scrapers that cannot reach loopback or present a client certificate; empty: off")
		timeout     = fs.Duration("decision-timeout", 100*time.Millisecond, "deadline for one decision; an overrun denies with 503 internal_error")
		debounce    = fs.Duration("debounce", 100*time.Millisecond, "how long file changes must settle before a reload")
		shutdown    = fs.Duration("shutdown-timeout", 8*time.Second, "how long in-flight checks may take to finish on SIGTERM")
		shutDelay   = fs.Duration("shutdown-delay", time.Second, "on SIGTERM, how long health is NOT_SERVING and /readyz 503 while checks are still answered, before the listeners close")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat   = fs.String("log-format", "text", "text or json")
		maxStreams  = fs.Uint("grpc-max-concurrent-streams", 1024, "max concurrent gRPC streams per connection")
		maxRecvSize = fs.Int("grpc-max-recv-msg-size", 1<<20, "max gRPC request size in bytes")
		cacheSize   = fs.Int("decision-cache-size", engine.DefaultCacheSize, "decisions remembered per snapshot, keyed by subject, method and path (negative: off)")
		gcPercent   = fs.Int("gc-percent", servingGCPercent(), "GOGC while serving (default $GOGC, else 100): the live heap is mostly the snapshot, so a higher value collects less often, trading memory for tail latency (see the README's Performance section)")
	)
	fs.StringVar(&dirs.Policies, "policies", "policies", "directory of .rego policies (*_test.rego files are ignored)")
	fs.StringVar(&dirs.Data, "data", "data", "directory of tenant data (*.yaml, *.yml)")
	httpLim := server.DefaultHTTPLimits
	fs.DurationVar(&httpLim.ReadHeaderTimeout, "http-read-header-timeout", httpLim.ReadHeaderTimeout, "HTTP: time to read a request's headers (cuts off slowloris clients)")
	fs.DurationVar(&httpLim.ReadTimeout, "http-read-timeout", httpLim.ReadTimeout, "HTTP: time to read a whole request")
	fs.DurationVar(&httpLim.WriteTimeout, "http-write-timeout", httpLim.WriteTimeout, "HTTP: time to write a response")
	fs.DurationVar(&httpLim.IdleTimeout, "http-idle-timeout", httpLim.IdleTimeout, "HTTP: how long a keep-alive connection may wait for its next request")
	fs.IntVar(&httpLim.MaxHeaderBytes, "http-max-header-bytes", httpLim.MaxHeaderBytes, "HTTP: request line and headers cap; larger is refused with 431")
	idf.register(fs)
	var bf bundleFlags
	bf.register(fs)
	var tf tlsFlags
	tf.register(fs)
	var lf decisionLogFlags
	lf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	debug.SetGCPercent(*gcPercent)
	dirs.Cache = tenant.NewCache()
	var src engine.Source = dirs
	if b, err := bf.source(fs, log); err != nil {
		return err
	} else if b != nil {
		src = b
	}
	if idf.secretFile == "" && idf.jwksFile == "" {
		return errors.New("serve needs --jwt-hs256-secret-file or --jwks-file (or both)")
	}
	if *debounce <= 0 {
		// It is also the quiet interval that keeps half-written files out.
		return fmt.Errorf("--debounce %v: must be positive", *debounce)
	}
	// A zero or negative limit would switch the protection off (a timeout
	// of 0 is none to net/http), so only positive values are taken.
	for name, d := range map[string]time.Duration{
		"--http-read-header-timeout": httpLim.ReadHeaderTimeout, "--http-read-timeout": httpLim.ReadTimeout,
		"--http-write-timeout": httpLim.WriteTimeout, "--http-idle-timeout": httpLim.IdleTimeout,
		"--decision-timeout": *timeout, "--shutdown-timeout": *shutdown,
	} {
		if d <= 0 {
			return fmt.Errorf("%s %v: must be positive", name, d)
		}
	}
	if httpLim.MaxHeaderBytes <= 0 || *maxStreams == 0 || *maxStreams > math.MaxUint32 || *maxRecvSize <= 0 {
		return errors.New("--http-max-header-bytes, --grpc-max-concurrent-streams and --grpc-max-recv-msg-size must be positive (streams at most 4294967295)")
	}
	for _, w := range idf.warnings() {
		log.Warn(w)
	}
	ident := idf.config()
	met := metrics.New()
	tlsFiles, err := tf.reloader(log)
	if err != nil {
		return err
	}
	var observer engine.Observer = met
	dlog, err := lf.open(log, met)
	if err != nil {
		return err
	}
	var sections map[string]func() any
	if dlog != nil {
		observer = engine.Observers{met, dlog}
		sections = map[string]func() any{"decision_log": decisionLogStatus(lf.path, dlog)}
	}
	eng := engine.New(engine.Options{
		// A reload only uses files left unchanged for the debounce interval
		// around its read, so a write that starts mid-read is never served.
		// Each source (data, policies, each key file) settles on its own.
		Source:    settle.Wrap(src, *debounce),
		Identity:  &ident,
		Timeout:   *timeout,
		Logger:    log,
		Observer:  observer,
		CacheSize: *cacheSize,
		DryRun:    lf.dryRun,
	})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = server.Run(ctx, server.Config{
		GRPCAddr:             *grpcAddr,
		HTTPAddr:             *httpAddr,
		AdminAddr:            *adminAddr,
		TLS:                  tlsFiles,
		Engine:               eng,
		Metrics:              met,
		Logger:               log,
		Watch:                append(src.Watched(), idf.files()...),
		Debounce:             *debounce,
		ShutdownDelay:        *shutDelay,
		ShutdownTimeout:      *shutdown,
		MaxConcurrentStreams: uint32(*maxStreams),
		MaxRecvMsgSize:       *maxRecvSize,
		HTTP:                 httpLim,
		StatusSections:       sections,
	})
	if dlog != nil {
		// After Run: every in-flight decision has been observed.
		err = errors.Join(err, dlog.Close())
	}
	return err
}

// servingGCPercent is --gc-percent's default: $GOGC when it is a number,
// else Go's default, 100.
func servingGCPercent() int {
	env := os.Getenv("GOGC")
	if env == "off" {
		return -1 // as the runtime reads it
	}
	if n, err := strconv.Atoi(env); err == nil {
		return n
	}
	return 100
}

func validate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "Validate the tenant data (every error, with file, line, id and field) and compile the\n"+
		"policies. Exit status 1 when anything is wrong.", stderr)
	data := fs.String("data", "data", "directory of tenant data")
	pols := fs.String("policies", "policies", "directory of .rego policies (empty: skip)")
	var bf bundleFlags
	bf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if b, err := bf.source(fs, warnLogger(stderr)); err != nil {
		return err
	} else if b != nil {
		return validateBundle(b, bf.opts.Path, stdout, stderr)
	}
	failed := false
	d, err := tenant.LoadDir(*data)
	if err != nil {
		failed = true
		fmt.Fprintln(stderr, err)
	} else {
		fmt.Fprintf(stdout, "%s: ok (%d customers, %d users, %d files)\n", *data, len(d.Customers), len(d.Users), len(d.Files))
	}
	if *pols != "" {
		files, err := policy.ReadDir(*pols)
		if err == nil {
			_, err = policy.Compile(context.Background(), files)
		}
		if err != nil {
			failed = true
			fmt.Fprintln(stderr, err)
		} else {
			fmt.Fprintf(stdout, "%s: ok (%d modules)\n", *pols, len(files))
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// validateBundle reads a bundle as serve would (signature, data, policies)
// and says what it holds.
func validateBundle(b *bundle.Source, path string, stdout, stderr io.Writer) error {
	ctx := context.Background()
	c, err := b.Read(ctx)
	if err == nil {
		if _, err = policy.Compile(ctx, c.Policies); err != nil {
			err = fmt.Errorf("bundle %s: %w", path, err)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	sig := "signature verified"
	if !c.Verified {
		sig = "signature NOT verified"
	}
	fmt.Fprintf(stdout, "%s: ok (revision %s, %s, %d customers, %d users, %d data files, %d modules)\n",
		path, c.Revision, sig, len(c.Data.Customers), len(c.Data.Users), len(c.Data.Files), len(c.Policies))
	return nil
}

// warnLogger is for the one-shot commands: warnings (an unverified bundle)
// only, on stderr.
func warnLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func check(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "Decide one request as the named user would be decided after a valid token, and print\n"+
		"the decision, the reason and the headers. Exit status 0 on allow, 3 on deny.", stderr)
	var dirs engine.Dirs
	fs.StringVar(&dirs.Policies, "policies", "policies", "directory of .rego policies")
	fs.StringVar(&dirs.Data, "data", "data", "directory of tenant data")
	user := fs.String("user", "", "user id (the JWT subject)")
	method := fs.String("method", "GET", "request method")
	path := fs.String("path", "", "request path, as sent (percent-encoded, query allowed)")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	var bf bundleFlags
	bf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "check needs --path")
		return exitError{2}
	}
	var src engine.Source = dirs
	if b, err := bf.source(fs, warnLogger(stderr)); err != nil {
		return err
	} else if b != nil {
		src = b
	}
	ctx := context.Background()
	snap, err := engine.Build(ctx, src, nil)
	if err != nil {
		return err
	}
	res, err := snap.DecideAs(ctx, *user, &engine.Request{Method: *method, Path: *path})
	if err != nil {
		return err
	}
	if *asJSON {
		hdrs := map[string]string{}
		for _, h := range res.Headers {
			hdrs[h.Name] = h.Value
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"allowed": res.Allowed, "status": res.Status, "reason": res.Reason, "headers": hdrs})
	} else {
		verdict := "DENY"
		if res.Allowed {
			verdict = "ALLOW"
		}
		fmt.Fprintf(stdout, "%s %d %s\n", verdict, res.Status, res.Reason)
		for _, h := range res.Headers {
			fmt.Fprintf(stdout, "%s: %s\n", h.Name, h.Value)
		}
	}
	if !res.Allowed {
		return exitError{3}
	}
	return nil
}

func tables(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tables", "Print the customer-type x module table and the role x functionality table, read from\n"+
		"the policy (data.tenantgate.tables), in the seed documents' rows and columns.", stderr)
	pols := fs.String("policies", "policies", "directory of .rego policies")
	asJSON := fs.Bool("json", false, "print data.tenantgate.tables as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	files, err := policy.ReadDir(*pols)
	if err != nil {
		return err
	}
	p, err := policy.Compile(context.Background(), files)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p.Tables())
	}
	return p.Tables().Print(stdout)
}

func token(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", "Mint an HS256 development token for a user, signed with the secret file. For demos and\n"+
		"tests only: production tokens come from your identity provider.", stderr)
	var idf identityFlags
	fs.StringVar(&idf.secretFile, "jwt-hs256-secret-file", "", "file holding the HS256 secret the server verifies with")
	fs.StringVar(&idf.issuer, "jwt-issuer", "", "iss claim to set (match the server's --jwt-issuer)")
	fs.StringVar(&idf.audience, "jwt-audience", "", "aud claim to set (match the server's --jwt-audience)")
	user := fs.String("user", "", "user id to put in the sub claim")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime (exp = now + ttl)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" || idf.secretFile == "" {
		fmt.Fprintln(stderr, "token needs --user and --jwt-hs256-secret-file")
		return exitError{2}
	}
	tok, err := identity.SignHS256(idf.secretFile, *user, idf.issuer, idf.audience, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

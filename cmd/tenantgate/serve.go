package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tenantgate/tenantgate/internal/buildinfo"
	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/distribution"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/server"
	"github.com/tenantgate/tenantgate/internal/settle"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

func serve(args []string, stderr io.Writer) error {
	fs := newFlags("serve", "Serve envoy.service.auth.v3.Authorization/Check over gRPC and the HTTP mode (/authz),\n"+
		"with /healthz, /readyz, /metrics and /v1/status on the HTTP address. Data, policies and keys are\n"+
		"watched and hot-reloaded; a bad edit keeps the last good snapshot serving.", stderr)
	var (
		idf         identityFlags
		dirs        engine.Dirs
		grpcAddr    = fs.String("grpc-addr", "127.0.0.1:9191", "gRPC ext_authz address: host:port or unix:///path")
		httpAddr    = fs.String("http-addr", "127.0.0.1:8181", "HTTP mode and admin address: host:port or unix:///path (keep it reachable by the proxy only)")
		adminExpl   = fs.Bool("admin-explain", false, "also serve /v1/explain, /v1/access and /v1/who-can on --admin-addr (they reveal the tenant tree; never on the decision address)")
		adminAddr   = fs.String("admin-addr", "", "optional plain-HTTP address serving only /healthz, /readyz, /metrics and /v1/status (never TLS, never decisions): for kubelet probes and scrapers that cannot reach loopback or present a client certificate; empty: off")
		timeout     = fs.Duration("decision-timeout", 100*time.Millisecond, "deadline for one decision; an overrun denies with 503 internal_error")
		debounce    = fs.Duration("debounce", 100*time.Millisecond, "how long file changes must settle before a reload")
		shutdown    = fs.Duration("shutdown-timeout", 8*time.Second, "how long in-flight checks may take to finish on SIGTERM")
		shutDelay   = fs.Duration("shutdown-delay", time.Second, "on SIGTERM, how long health is NOT_SERVING and /readyz 503 while checks are still answered, before the listeners close")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat   = fs.String("log-format", "text", "text or json")
		maxStreams  = fs.Uint("grpc-max-concurrent-streams", 1024, "max concurrent gRPC streams per connection")
		maxRecvSize = fs.Int("grpc-max-recv-msg-size", 1<<20, "max gRPC request size in bytes (of the decompressed request when gzip-compressed)")
		reflect     = fs.Bool("grpc-reflection", false, "serve gRPC server reflection (for grpcurl without -proto); off: it lists every service and message to any client")
		evaluator   = fs.String("evaluator", engine.DefaultEvaluator(), "ir (OPA's compiled plan of the policy, run by tenantgate: ~10x less CPU; used only when a build-time self-check finds it deciding exactly as OPA) or rego (OPA's own evaluator); /v1/status shows which is in use")
		cacheSize   = fs.Int("decision-cache-size", engine.DefaultCacheSize, "decisions remembered per snapshot, keyed by subject, method and path (negative: off)")
		gcPercent   = fs.Int("gc-percent", servingGCPercent(), "GOGC while serving (default $GOGC, else 100): the live heap is mostly the snapshot, so a higher value collects less often, trading memory for tail latency (tenantgate help performance)")
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
	bf.register(fs, true)
	var tf tlsFlags
	tf.register(fs)
	var lf decisionLogFlags
	lf.register(fs)
	var cf configFlags
	cf.register(fs)
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
	dcfg, err := cf.load(fs, log)
	if err != nil {
		return err
	}
	var dsrc *distribution.Source
	var bundleFile *bundle.Source
	if b, err := bf.source(fs, log); err != nil {
		return err
	} else if b != nil {
		src, bundleFile = b, b
	} else if dcfg != nil && dcfg.Bundle != nil {
		if dsrc, err = distribution.NewSource(dcfg, log); err != nil {
			return err
		}
		src = dsrc
	}
	if !idf.hasKeys() {
		return errors.New("serve needs token keys: --jwt-hs256-secret-file, --jwks-file, --jwks-url or --oidc-issuer (several may be combined)")
	}
	if bf.opts.Path == "" && dsrc == nil {
		if err := checkDirs(dirs); err != nil {
			return err
		}
	}
	if !engine.ValidEvaluator(*evaluator) {
		return fmt.Errorf("--evaluator %q: want ir or rego", *evaluator)
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Before anything listens: without the provider's first key set no
	// token it signs could be verified (--jwks-start-timeout).
	remote, err := idf.startRemote(ctx, fs, log, met, &ident)
	if err != nil {
		return err
	}
	if remote != nil {
		defer remote.Close()
	}
	tlsFiles, err := tf.reloader(log)
	if err != nil {
		return err
	}
	var observer engine.Observer = met
	dlog, err := lf.open(log, met)
	if err != nil {
		return err
	}
	sections := map[string]func() any{"build": func() any { return buildinfo.Get() }}
	if bundleFile != nil {
		sections["bundle_file"] = func() any { return bundleFile.Status() }
	}
	if dlog != nil {
		observer = engine.Observers{met, dlog}
		sections["decision_log"] = decisionLogStatus(lf.path, dlog)
	}
	// A reload only uses files left unchanged for the debounce interval
	// around its read, so a write that starts mid-read is never served.
	// Each source (data, policies, each key file) settles on its own.
	engSrc := settle.Wrap(src, *debounce)
	var reporters *distribution.Reporters
	if dcfg != nil {
		if reporters, err = distribution.StartReporters(ctx, dcfg, log); err != nil {
			return err
		}
		defer stopReporters(reporters)
		if reporters.Logging() {
			observer = append(engine.Observers{observer}, reporters)
		}
		if err := met.Register(distribution.Collector{Source: dsrc, Reporters: reporters}); err != nil {
			return err
		}
	}
	if dsrc != nil {
		// The downloaded bundle is read as it is (no file to settle); the
		// key files beside it still settle.
		dsrc.Settler, _ = engSrc.(engine.Settler)
		engSrc = dsrc
		sections["bundles"] = func() any { return dsrc.Status() }
	}
	eng := engine.New(engine.Options{
		Source:    engSrc,
		Identity:  &ident,
		Timeout:   *timeout,
		Logger:    log,
		Observer:  observer,
		CacheSize: *cacheSize,
		DryRun:    lf.dryRun,
		Evaluator: *evaluator,
		BuildHook: buildGC,
	})
	for _, a := range []struct{ flag, addr string }{{"grpc-addr", *grpcAddr}, {"http-addr", *httpAddr}, {"admin-addr", *adminAddr}} {
		if a.addr == "" && a.flag == "admin-addr" {
			continue
		}
		if err := checkAddr(a.flag, a.addr); err != nil {
			return err
		}
	}
	var ready func(server.Addrs)
	var timedOut atomic.Bool // --bundle-startup-timeout passed with no bundle
	if dsrc != nil {
		dsrc.Attach(eng, reporters.BundleStatus)
		persisted := dsrc.LoadPersisted()
		defer dsrc.Start(ctx)()
		ready = func(server.Addrs) { dsrc.Observed() }
		if !persisted {
			go func() {
				t := time.NewTimer(cf.startupTimeout)
				defer t.Stop()
				select {
				case <-dsrc.Activated():
				case <-ctx.Done():
				case <-t.C:
					log.Error("no bundle activated in time; exiting", "bundle-startup-timeout", cf.startupTimeout)
					timedOut.Store(true)
					stop()
				}
			}()
		}
	}
	var adminHandlers map[string]http.Handler
	if *adminExpl {
		if *adminAddr == "" {
			return errors.New("--admin-explain needs --admin-addr: the analysis endpoints are served on the admin address only")
		}
		adminHandlers = server.ExplainHandlers(eng)
	}
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
		Reflection:           *reflect,
		HTTP:                 httpLim,
		StatusSections:       sections,
		AdminHandlers:        adminHandlers,
		StartUnready:         dsrc != nil,
		Ready:                ready,
	})
	if timedOut.Load() {
		err = errors.Join(err, fmt.Errorf("--config %s: no revision of bundle %q activated within --bundle-startup-timeout %v (see the errors above)",
			cf.path, dcfg.BundleName, cf.startupTimeout))
	}
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

// stopReporters flushes the status and decision-log uploads, bounded.
func stopReporters(r *distribution.Reporters) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.Stop(ctx)
}

// Package server owns the process lifecycle: the first load, the watcher that
// drives reloads, the gRPC and HTTP listeners, health, and the graceful stop.
package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	// gzip registers itself as a compressor: a client that sends
	// grpc-encoding: gzip (Envoy's grpc_service may) is answered instead of
	// refused with Unimplemented. MaxRecvMsgSize bounds the decompressed
	// message, so a gzip bomb is refused like any oversized request.
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
	"github.com/tenantgate/tenantgate/internal/httpauthz"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
	"github.com/tenantgate/tenantgate/internal/watch"
)

// Config wires a server.
type Config struct {
	GRPCAddr string // host:port, or unix:///path
	HTTPAddr string // host:port, or unix:///path
	// AdminAddr, when set, is a third listener, always plain HTTP, serving
	// only /healthz, /readyz, /metrics and /v1/status: no decisions. It is
	// for what cannot present a client certificate or reach loopback (the
	// kubelet's probes, a Prometheus scraper). "": none.
	AdminAddr string
	Engine    *engine.Engine
	Metrics   *metrics.Metrics
	Logger    *slog.Logger

	// TLS, when set, serves both listeners over TLS (mutual TLS when it has
	// a client CA); its files are watched and reloaded. nil: plaintext.
	TLS *tlsconfig.Reloader

	// Watch lists the files and directories whose changes reload the engine;
	// Debounce is how long changes must settle first.
	Watch    []string
	Debounce time.Duration

	// ShutdownDelay is how long, on stop, health says NOT_SERVING and
	// /readyz 503 while both listeners still answer as usual, so that
	// proxies and load balancers notice and stop sending before the
	// listeners close. 0: close at once.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the graceful stop: in-flight checks get this
	// long to finish before the listeners are closed hard.
	ShutdownTimeout time.Duration
	// MaxConcurrentStreams and MaxRecvMsgSize bound one gRPC connection.
	MaxConcurrentStreams uint32
	MaxRecvMsgSize       int
	// Reflection registers gRPC server reflection, for grpcurl and ghz
	// without the proto files. Off by default: it lists every service and
	// message to any client that can connect, which production has no use for.
	Reflection bool
	// HTTP bounds the HTTP listener's connections; a zero field takes
	// DefaultHTTPLimits' value.
	HTTP HTTPLimits

	// StatusSections add parts to /v1/status beside the engine's: each
	// function is called per status request and its value shown under its
	// key (`tenantgate serve` adds "decision_log").
	StatusSections map[string]func() any

	// AdminHandlers are mounted on the admin address only (pattern ->
	// handler), never on the decision address: `serve --admin-explain`
	// puts ExplainHandlers here.
	AdminHandlers map[string]http.Handler

	// StartUnready serves even when the first load fails (a bundle not yet
	// downloaded): /readyz answers 503 and every check is denied with 503
	// internal_error until a reload publishes a snapshot. Off: a failed
	// first load is Run's error.
	StartUnready bool

	// Ready, when set, is called with the bound addresses once every
	// listener accepts connections (tests bind port 0 and read them here).
	Ready func(Addrs)
}

// Addrs are the bound listener addresses; Admin is nil without AdminAddr.
type Addrs struct {
	GRPC, HTTP, Admin net.Addr
}

// HTTPLimits bound what one HTTP client can hold: a slow or stalled client
// (slowloris) is cut off by the timeouts instead of pinning a connection,
// and a header block over MaxHeaderBytes is refused with 431.
type HTTPLimits struct {
	ReadHeaderTimeout time.Duration // to read the request line and headers
	ReadTimeout       time.Duration // to read the whole request
	WriteTimeout      time.Duration // from the end of the headers to the end of the response
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request
	MaxHeaderBytes    int           // the request line and headers
}

// DefaultHTTPLimits are far above what a proxy's authorization call needs
// (a few headers, no body, an answer in microseconds).
var DefaultHTTPLimits = HTTPLimits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      10 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    64 << 10,
}

func (l HTTPLimits) withDefaults() HTTPLimits {
	d := DefaultHTTPLimits
	return HTTPLimits{
		ReadHeaderTimeout: cmp.Or(l.ReadHeaderTimeout, d.ReadHeaderTimeout),
		ReadTimeout:       cmp.Or(l.ReadTimeout, d.ReadTimeout),
		WriteTimeout:      cmp.Or(l.WriteTimeout, d.WriteTimeout),
		IdleTimeout:       cmp.Or(l.IdleTimeout, d.IdleTimeout),
		MaxHeaderBytes:    cmp.Or(l.MaxHeaderBytes, d.MaxHeaderBytes),
	}
}

// Server is a running tenantgate.
type Server struct {
	cfg      Config
	health   *health.Server
	stopping atomic.Bool

	// watching is cancelled by endWatches: it ends the health Watch
	// streams (see watchEndingHealth).
	watching   context.Context
	endWatches context.CancelFunc
}

// StartError is a first load that failed: nothing was ever served, so there
// is no last good snapshot to keep, and the process should exit. Its text
// puts each of the error's lines (every data error, with file, line, id and
// field) on a line of its own under "cannot start:".
type StartError struct{ Err error }

func (e *StartError) Error() string {
	msg := e.Err.Error()
	if !strings.Contains(msg, "\n") {
		return "cannot start: " + msg
	}
	return "cannot start:\n  " + strings.ReplaceAll(msg, "\n", "\n  ")
}

func (e *StartError) Unwrap() error { return e.Err }

// Run loads the first snapshot (a failure is returned: bad data at start is
// a clear error and a non-zero exit), serves until ctx is cancelled, then
// stops gracefully.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 8 * time.Second
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = 1024
	}
	if cfg.MaxRecvMsgSize == 0 {
		cfg.MaxRecvMsgSize = 1 << 20
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 100 * time.Millisecond
	}
	if err := cfg.Engine.Reload(ctx); err != nil {
		if !cfg.StartUnready || ctx.Err() != nil {
			return &StartError{Err: err}
		}
		cfg.Logger.Warn("serving unready until a first snapshot loads", "error", err)
	}
	s := &Server{cfg: cfg, health: health.NewServer()}
	s.watching, s.endWatches = context.WithCancel(context.Background())
	defer s.endWatches()
	return s.serve(ctx)
}

// serve runs the server in four steps: listen, build the servers, start
// them beside the watchers, and on ctx's end (or a server's failure) shut
// down gracefully.
func (s *Server) serve(ctx context.Context) error {
	// Listeners first: a port in use is the likeliest start-up failure, and
	// failing before the watchers exist leaves nothing open behind.
	lis, err := s.listen()
	if err != nil {
		return &StartError{Err: err}
	}
	ws, err := s.watchers()
	if err != nil {
		lis.close()
		return err
	}
	srv := s.buildServers(lis)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var wg sync.WaitGroup
	errc := s.start(watchCtx, &wg, lis, ws, srv)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	stopWatch()
	s.shutdown(srv, runErr != nil)
	wg.Wait()
	s.cfg.Logger.Info("stopped")
	return runErr
}

// listeners are the open sockets; admin is nil when it is off.
type listeners struct{ grpc, http, admin net.Listener }

func (l listeners) close() {
	for _, ln := range []net.Listener{l.grpc, l.http, l.admin} {
		if ln != nil {
			ln.Close()
		}
	}
}

// listen opens the gRPC, HTTP and (when configured) admin listeners, or
// none: a failure closes what it opened and names the listener.
func (s *Server) listen() (listeners, error) {
	var l listeners
	for _, x := range []struct {
		name, addr string
		ln         *net.Listener
	}{{"grpc", s.cfg.GRPCAddr, &l.grpc}, {"http", s.cfg.HTTPAddr, &l.http}, {"admin", s.cfg.AdminAddr, &l.admin}} {
		if x.addr == "" && x.name == "admin" {
			continue
		}
		ln, err := Listen(x.addr)
		if err != nil {
			l.close()
			if errors.Is(err, syscall.EADDRINUSE) {
				return listeners{}, fmt.Errorf("%s listener: %w (another tenantgate, or another server, has it: stop it or choose another --%s-addr)", x.name, err, x.name)
			}
			return listeners{}, fmt.Errorf("%s listener: %w", x.name, err)
		}
		*x.ln = ln
	}
	return l, nil
}

// watches are the file watchers: data, policies and keys (a reload), and
// the TLS files (a certificate reload) when TLS is on.
type watches struct{ sources, tls *watch.Watcher }

func (s *Server) watchers() (watches, error) {
	var ws watches
	var err error
	if ws.sources, err = watch.New(s.cfg.Watch, s.cfg.Debounce, s.cfg.Logger); err != nil {
		return watches{}, fmt.Errorf("watch: %w", err)
	}
	if s.cfg.TLS != nil {
		// The certificate files have their own watcher: a rotation must not
		// rebuild the policy snapshot, nor a data edit re-read the keys.
		if ws.tls, err = watch.New(s.cfg.TLS.Files().Paths(), s.cfg.Debounce, s.cfg.Logger); err != nil {
			ws.sources.Close()
			return watches{}, fmt.Errorf("watch TLS files: %w", err)
		}
	}
	return ws, nil
}

// servers are the gRPC server and the HTTP ones; admin is nil when off.
type servers struct {
	grpc        *grpc.Server
	http, admin *http.Server
}

// buildServers makes the gRPC ext_authz server (with health and, when asked
// for, reflection) and the HTTP servers, without serving yet.
func (s *Server) buildServers(lis listeners) servers {
	grpcOpts := []grpc.ServerOption{
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(s.cfg.MaxRecvMsgSize),
		// A CheckRequest protobuf cannot decode is denied, not an RPC error.
		grpc.ForceServerCodecV2(extauthz.NewCodec()),
	}
	if s.cfg.TLS != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(s.cfg.TLS.ServerConfig("h2"))))
	}
	gs := grpc.NewServer(grpcOpts...)
	authv3.RegisterAuthorizationServer(gs, extauthz.New(s.cfg.Engine))
	healthpb.RegisterHealthServer(gs, &watchEndingHealth{Server: s.health, end: s.watching})
	if s.cfg.Reflection {
		reflection.Register(gs)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	// Both HTTP listeners get the same limits: the admin one is no less
	// exposed to a slow client.
	lim := s.cfg.HTTP.withDefaults()
	newHTTP := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
		}
	}
	srv := servers{grpc: gs, http: newHTTP(s.handler())}
	if s.cfg.TLS != nil {
		// Served with ServeTLS, not a tls.NewListener, so HTTP/2 is offered too.
		srv.http.TLSConfig = s.cfg.TLS.ServerConfig("h2", "http/1.1")
	}
	if lis.admin != nil {
		amux := s.mux()
		for pattern, h := range s.cfg.AdminHandlers {
			amux.Handle(pattern, h)
		}
		srv.admin = newHTTP(amux)
	}
	return srv
}

// start runs the watchers and the servers on wg and says where it serves;
// a server that fails sends its error on the returned channel.
func (s *Server) start(watchCtx context.Context, wg *sync.WaitGroup, lis listeners, ws watches, srv servers) <-chan error {
	errc := make(chan error, 4)
	wg.Go(func() {
		_ = ws.sources.Run(watchCtx, func() { _ = s.cfg.Engine.Reload(watchCtx) })
	})
	if ws.tls != nil {
		wg.Go(func() {
			// Reload logs a bad file itself; the old certificate keeps serving.
			_ = ws.tls.Run(watchCtx, func() { _ = s.cfg.TLS.Reload() })
		})
	}
	wg.Go(func() {
		if err := srv.grpc.Serve(lis.grpc); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	})
	wg.Go(func() {
		var err error
		if srv.http.TLSConfig != nil {
			err = srv.http.ServeTLS(lis.http, "", "")
		} else {
			err = srv.http.Serve(lis.http)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	})
	addrs := Addrs{GRPC: lis.grpc.Addr(), HTTP: lis.http.Addr()}
	logArgs := []any{"grpc", addrs.GRPC.String(), "http", addrs.HTTP.String()}
	if srv.admin != nil {
		addrs.Admin = lis.admin.Addr()
		logArgs = append(logArgs, "admin", addrs.Admin.String())
		wg.Go(func() {
			if err := srv.admin.Serve(lis.admin); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin http: %w", err)
			}
		})
	}
	rev := ""
	if snap := s.cfg.Engine.Snapshot(); snap != nil {
		rev = snap.Revision
	}
	s.cfg.Logger.Info("serving", append(logArgs, "revision", rev, "tls", s.cfg.TLS != nil)...)
	if s.cfg.Ready != nil {
		s.cfg.Ready(addrs)
	}
	return errc
}

// shutdown stops gracefully: say NOT_SERVING and 503 at once so the proxy
// stops sending, keep answering for ShutdownDelay while it notices (not
// after a server failed), let in-flight checks finish within
// ShutdownTimeout, then close whatever is left.
func (s *Server) shutdown(srv servers, failed bool) {
	log := s.cfg.Logger
	s.stopping.Store(true)
	s.health.Shutdown()
	if d := s.cfg.ShutdownDelay; d > 0 && !failed {
		log.Info("stopping: health NOT_SERVING, still answering while proxies notice", "delay", d)
		srv.http.SetKeepAlivesEnabled(false) // answers say Connection: close
		if srv.admin != nil {
			srv.admin.SetKeepAlivesEnabled(false)
		}
		time.Sleep(d)
	}
	s.endWatches() // health Watch streams would hold GracefulStop open
	log.Info("stopping: draining in-flight checks", "timeout", s.cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		srv.grpc.GracefulStop()
		close(done)
	}()
	for _, h := range []*http.Server{srv.http, srv.admin} {
		if h == nil {
			continue
		}
		if err := h.Shutdown(shutCtx); err != nil {
			log.Warn("stopping: HTTP requests still running at the shutdown timeout; closing them")
			h.Close()
		}
	}
	select {
	case <-done:
	case <-shutCtx.Done():
		log.Warn("stopping: gRPC calls still running at the shutdown timeout; closing them")
		srv.grpc.Stop()
	}
}

// watchEndingHealth is the standard health service, except that its Watch
// streams end when the server stops. A Watch never ends by itself, and
// GracefulStop waits for every open RPC, so one watching client (Envoy's or
// Kubernetes' health checker) would otherwise hold the drain for the whole
// ShutdownTimeout. By the time the streams end, they have sent NOT_SERVING.
type watchEndingHealth struct {
	*health.Server
	end context.Context
}

func (h *watchEndingHealth) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(h.end, cancel)
	defer stop()
	err := h.Server.Watch(req, watchStream{Health_WatchServer: stream, ctx: ctx})
	if h.end.Err() != nil {
		return status.Error(codes.Unavailable, "tenantgate is stopping")
	}
	return err
}

// watchStream is a Watch stream with a context that also ends on stop.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }

// handler routes /authz requests on the raw request target, before
// http.ServeMux sees them: the mux would answer a path with dot segments or
// double slashes with a redirect to the cleaned path, and the decision must
// see (and deny) exactly what the client sent.
func (s *Server) handler() http.Handler {
	authz := httpauthz.New(s.cfg.Engine)
	mux := s.mux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpauthz.Matches(r.RequestURI) {
			authz.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.stopping.Load() || s.cfg.Engine.Snapshot() == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.status())
	})
	return mux
}

// status is what /v1/status shows: the engine's status, plus the
// configured sections.
func (s *Server) status() any {
	st := s.cfg.Engine.Status()
	if len(s.cfg.StatusSections) == 0 {
		return st
	}
	m := map[string]any{}
	if b, err := json.Marshal(st); err == nil {
		_ = json.Unmarshal(b, &m) // cannot fail: it was just marshalled
	}
	for k, f := range s.cfg.StatusSections {
		m[k] = f()
	}
	return m
}

// SocketMode is the mode of a Unix socket tenantgate listens on: the owner
// and the group may connect (connecting needs write permission), so a proxy
// running as another user shares a group with tenantgate (in Kubernetes, the
// pod's fsGroup on the shared volume), and nobody else can ask.
const SocketMode = 0o660

// Listen opens a TCP listener for host:port, or a Unix socket for
// unix:///path. A stale socket file from an earlier run is replaced, but
// not one that a live process still accepts on, nor a file that is not a
// socket. The socket is removed when the listener is closed.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if path == "" {
			return nil, fmt.Errorf("%s: empty socket path", addr)
		}
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		lis, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		// After bind, not before: the socket is created with the umask's
		// mode (0755 with the usual 022: owner only), so it never allows
		// more than SocketMode in between.
		if err := chmodSocket(path, SocketMode); err != nil {
			lis.Close()
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		return lis, nil
	}
	return net.Listen("tcp", addr)
}

// removeStaleSocket removes path if it is a socket nobody accepts on.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; not replacing it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another process is listening on this socket", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale socket: %w", err)
	}
	return nil
}

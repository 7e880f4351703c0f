// Package server owns the process lifecycle: the first load, the watcher that
// drives reloads, the gRPC and HTTP listeners, health, and the graceful stop.
package server

import (
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
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
	"github.com/tenantgate/tenantgate/internal/httpauthz"
	"github.com/tenantgate/tenantgate/internal/metrics"
	"github.com/tenantgate/tenantgate/internal/watch"
)

// Config wires a server.
type Config struct {
	GRPCAddr string // host:port, or unix:///path
	HTTPAddr string // host:port, or unix:///path
	Engine   *engine.Engine
	Metrics  *metrics.Metrics
	Logger   *slog.Logger

	// Watch lists the files and directories whose changes reload the engine;
	// Debounce is how long changes must settle first.
	Watch    []string
	Debounce time.Duration

	// ShutdownTimeout bounds the graceful stop: in-flight checks get this
	// long to finish before the listeners are closed hard.
	ShutdownTimeout time.Duration
	// MaxConcurrentStreams and MaxRecvMsgSize bound one gRPC connection.
	MaxConcurrentStreams uint32
	MaxRecvMsgSize       int

	// Ready, when set, is called with the bound addresses once both
	// listeners accept connections (tests bind port 0 and read them here).
	Ready func(grpcAddr, httpAddr net.Addr)
}

// Server is a running tenantgate.
type Server struct {
	cfg      Config
	health   *health.Server
	stopping atomic.Bool
}

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
		return fmt.Errorf("initial load: %w", err)
	}
	s := &Server{cfg: cfg, health: health.NewServer()}
	return s.serve(ctx)
}

func (s *Server) serve(ctx context.Context) error {
	log := s.cfg.Logger
	w, err := watch.New(s.cfg.Watch, s.cfg.Debounce, log)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}

	grpcLis, err := Listen(s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc listener: %w", err)
	}
	httpLis, err := Listen(s.cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("http listener: %w", err)
	}

	gs := grpc.NewServer(
		grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(s.cfg.MaxRecvMsgSize),
	)
	authv3.RegisterAuthorizationServer(gs, extauthz.New(s.cfg.Engine))
	healthpb.RegisterHealthServer(gs, s.health)
	reflection.Register(gs)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	hs := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Go(func() {
		_ = w.Run(watchCtx, func() { _ = s.cfg.Engine.Reload(watchCtx) })
	})
	wg.Go(func() {
		if err := gs.Serve(grpcLis); err != nil {
			errc <- fmt.Errorf("grpc: %w", err)
		}
	})
	wg.Go(func() {
		if err := hs.Serve(httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	})
	log.Info("serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"revision", s.cfg.Engine.Snapshot().Revision)
	if s.cfg.Ready != nil {
		s.cfg.Ready(grpcLis.Addr(), httpLis.Addr())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}

	// Graceful stop: say NOT_SERVING and 503 at once so the proxy stops
	// sending, let in-flight checks finish, then close.
	s.stopping.Store(true)
	s.health.Shutdown()
	log.Info("stopping: draining in-flight checks", "timeout", s.cfg.ShutdownTimeout)
	stopWatch()
	shutCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	if err := hs.Shutdown(shutCtx); err != nil {
		hs.Close()
	}
	select {
	case <-done:
	case <-shutCtx.Done():
		gs.Stop()
	}
	wg.Wait()
	log.Info("stopped")
	return runErr
}

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
		_ = enc.Encode(s.cfg.Engine.Status())
	})
	return mux
}

// Listen opens a TCP listener for host:port, or a Unix socket for
// unix:///path (a stale socket file from an earlier run is replaced).
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if path == "" {
			return nil, fmt.Errorf("%s: empty socket path", addr)
		}
		if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(path)
		}
		return net.Listen("unix", path)
	}
	return net.Listen("tcp", addr)
}

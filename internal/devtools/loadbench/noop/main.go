// Command noop is the floor of the load benchmark: an Envoy ext_authz gRPC
// server that answers every Check with OK and no headers, without looking at
// the request. Whatever tenantgate costs above it is the cost of deciding.
//
//	go build -o bin/tenantgate-noop ./internal/devtools/loadbench/noop
//	bin/tenantgate-noop -grpc-addr 127.0.0.1:9292
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// okResponse is shared by every call: it is never modified, and marshalling
// only reads it.
var okResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

type noop struct {
	authv3.UnimplementedAuthorizationServer
}

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "noop:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("grpc-addr", "127.0.0.1:9292", "gRPC address (host:port)")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	// The same stream bound as tenantgate's default, so the two differ only
	// in what Check does.
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(1024))
	authv3.RegisterAuthorizationServer(srv, noop{})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	fmt.Fprintln(os.Stderr, "noop: serving on", lis.Addr())
	if err := srv.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

package server

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

// TestGRPCGzip: a client that compresses its requests (grpc-encoding: gzip,
// as Envoy's grpc_service or any grpc-go client with UseCompressor may) gets
// decisions, not Unimplemented; and a gzip bomb is still bounded by the
// receive cap, which applies to the decompressed message.
//
// It runs the real binary: importing the gzip package here registers the
// compressor in the test process too, so an in-process server would accept
// gzip whether or not tenantgate itself registers it.
func TestGRPCGzip(t *testing.T) {
	srv := startServed(t, buildBinary(t), testdir.Copy(t, "../../policies"), "--shutdown-delay", "0s")
	secret, grpcSock := srv.secret, srv.grpcSock
	conn, err := grpc.NewClient("unix://"+grpcSock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	tok, err := identity.SignHS256(secret, alice, "", "", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	check := func(path string, extra map[string]string) (*authv3.CheckResponse, error) {
		hdrs := map[string]string{"authorization": "Bearer " + tok, ":authority": "portal.example"}
		for k, v := range extra {
			hdrs[k] = v
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: path, Headers: hdrs,
			}},
		}})
	}

	for _, c := range []struct {
		path, reason string // reason "": an allow
		status       int32
	}{
		{allowedPath, "", 0},
		{deniedPath, "outside_tenant", 403},
	} {
		resp, err := check(c.path, nil)
		if err != nil {
			t.Fatalf("gzip Check %s: RPC error %v, want a CheckResponse", c.path, err)
		}
		if c.reason == "" {
			if resp.GetOkResponse() == nil || resp.GetStatus().GetCode() != 0 {
				t.Errorf("gzip Check %s: %v, want an allow", c.path, resp)
			}
			continue
		}
		d := resp.GetDeniedResponse()
		if d == nil || int32(d.GetStatus().GetCode()) != c.status {
			t.Fatalf("gzip Check %s: %v, want a %d deny", c.path, resp, c.status)
		}
		var reason string
		for _, hv := range d.GetHeaders() {
			if hv.GetHeader().GetKey() == "x-tenantgate-reason" {
				reason = hv.GetHeader().GetValue()
			}
		}
		if reason != c.reason {
			t.Errorf("gzip Check %s: reason %q, want %q", c.path, reason, c.reason)
		}
	}

	// 2 MiB of one byte compresses to a few KiB: the 1 MiB cap must see 2 MiB.
	_, err = check(allowedPath, map[string]string{"x-big": strings.Repeat("b", 2<<20)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a gzipped request of 2 MiB decompressed: %v, want ResourceExhausted", err)
	}
	if resp, err := check(allowedPath, nil); err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("after the refused request: %v %v, want an allow", resp, err)
	}
}

// TestGRPCReflection: server reflection is off by default (it would tell
// any client every service and message; grpcurl and ghz can be given the
// proto instead) and on with Config.Reflection (--grpc-reflection).
func TestGRPCReflection(t *testing.T) {
	for _, c := range []struct {
		name string
		on   bool
	}{{"default off", false}, {"on", true}} {
		t.Run(c.name, func(t *testing.T) {
			h := launch(t, serveOpts{config: func(cfg *Config) { cfg.Reflection = c.on }})
			services, err := listServices(t, h.grpcAddr)
			if !c.on {
				if status.Code(err) != codes.Unimplemented {
					t.Fatalf("reflection without --grpc-reflection: %v %v, want Unimplemented", services, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("reflection: %v", err)
			}
			if !slices.Contains(services, authv3.Authorization_ServiceDesc.ServiceName) {
				t.Fatalf("reflection lists %v, want %s among them", services, authv3.Authorization_ServiceDesc.ServiceName)
			}
		})
	}
}

// listServices asks the reflection service (v1, as grpcurl does first) for
// the service names.
func listServices(t *testing.T, addr string) ([]string, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil && !errors.Is(err, io.EOF) {
		// io.EOF: the server already ended the stream (Unimplemented
		// comes back that fast); its status is what Recv returns.
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

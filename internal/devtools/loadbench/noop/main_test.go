package main

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestAnswersOKWithoutHeaders: over real gRPC, any request, even an empty
// one, gets OK and no headers.
func TestAnswersOKWithoutHeaders(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, noop{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	tests := []struct {
		name string
		req  *authv3.CheckRequest
	}{
		{"empty", &authv3.CheckRequest{}},
		{"http", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
			Http: &authv3.AttributeContext_HttpRequest{Method: "DELETE", Path: "/anything"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			ok := resp.GetOkResponse()
			if resp.GetStatus().GetCode() != 0 || ok == nil || len(ok.GetHeaders()) != 0 || len(ok.GetHeadersToRemove()) != 0 {
				t.Errorf("response %v, want OK with no headers", resp)
			}
		})
	}
}

package extauthz_test

import (
	"bytes"
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
)

type recordChecker struct{ got []engine.Request }

func (c *recordChecker) Check(_ context.Context, req *engine.Request) engine.Result {
	c.got = append(c.got, *req)
	if req.Path == "" {
		return engine.Result{Decision: decision.Decision{Status: 400, Reason: "bad_path"}}
	}
	return engine.Result{Decision: decision.Decision{Allowed: true, Status: 200, Reason: "allowed"}}
}

// rawCodec sends pre-encoded bytes, so the test can put on the wire what a
// well-behaved protobuf client would refuse to encode.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

// TestInvalidUTF8IsADeny: invalid UTF-8 in a string field fails protobuf
// decoding; with the codec that is a denied CheckResponse, not an RPC error.
func TestInvalidUTF8IsADeny(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	checker := &recordChecker{}
	gs := grpc.NewServer(grpc.ForceServerCodecV2(extauthz.NewCodec()))
	authv3.RegisterAuthorizationServer(gs, extauthz.New(checker))
	go gs.Serve(lis)
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	good := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/api/v1/customers/contoso/usersX",
			Headers: map[string]string{"authorization": "Bearer t"}}}}}
	wire, err := proto.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(wire, []byte("usersX"), []byte("users\xff"), 1)
	for _, c := range []struct {
		name string
		msg  []byte
	}{{"valid", wire}, {"invalid utf-8", bad}} {
		name, msg := c.name, c.msg
		var out []byte
		err := conn.Invoke(context.Background(), "/envoy.service.auth.v3.Authorization/Check", &msg, &out, grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatalf("%s: RPC error %v (must be a CheckResponse)", name, err)
		}
		var resp authv3.CheckResponse
		if err := proto.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		wantDeny := name != "valid"
		if (resp.GetDeniedResponse() != nil) != wantDeny {
			t.Errorf("%s: %v", name, &resp)
		}
	}
	if len(checker.got) != 2 || checker.got[1].Path != "" || checker.got[1].Authorization != "" {
		t.Errorf("requests seen: %+v", checker.got)
	}
}

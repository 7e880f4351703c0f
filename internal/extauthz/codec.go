package extauthz

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is gRPC's proto codec, except that a CheckRequest it cannot decode
// (invalid UTF-8 in a header value or the path, which protobuf refuses in a
// string field) becomes an empty CheckRequest instead of an RPC error. Check
// then denies it (an empty path is bad_path); an RPC error is what Envoy's
// failure_mode_allow would turn into an allow. Install it with
// grpc.ForceServerCodecV2(extauthz.NewCodec()).
type Codec struct{ encoding.CodecV2 }

// NewCodec wraps the registered proto codec.
func NewCodec() Codec { return Codec{encoding.GetCodecV2(grpcproto.Name)} }

// Unmarshal implements encoding.CodecV2.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if req, ok := v.(*authv3.CheckRequest); ok && err != nil {
		proto.Reset(req)
		return nil
	}
	return err
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// tokenTTL outlives any benchmark run: an expired token would turn allows
// into 401s halfway through.
const tokenTTL = 24 * time.Hour

// checkRequests shapes the dataset's request mix as Envoy's CheckRequests,
// each with an HS256 token minted once per user from secretFile.
func checkRequests(d *tenantgen.Dataset, secretFile string) ([]*authv3.CheckRequest, error) {
	now := time.Now()
	tokens := make(map[string]string)
	for _, sub := range d.Subjects() {
		tok, err := identity.SignHS256(secretFile, sub, "", "", tokenTTL, now)
		if err != nil {
			return nil, err
		}
		tokens[sub] = tok
	}
	out := make([]*authv3.CheckRequest, len(d.Requests))
	for i, r := range d.Requests {
		out[i] = r.CheckRequest(tokens[r.User], i)
	}
	return out, nil
}

// writeDataFile writes the requests as ghz's data file: a JSON array of
// messages in protobuf's JSON form.
func writeDataFile(path string, reqs []*authv3.CheckRequest) error {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, r := range reqs {
		m, err := protojson.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode request %d for %s: %w", i, path, err)
		}
		if i > 0 {
			b.WriteString(",\n")
		}
		b.Write(m)
	}
	b.WriteString("\n]\n")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write ghz data file: %w", err)
	}
	return nil
}

// writeProtoset writes the descriptors of the ext_authz service and every
// file it imports, dependencies first, as ghz's --protoset wants them. They
// come from the Go types compiled into this program, so they match what the
// servers speak exactly.
func writeProtoset(path string) error {
	fd := authv3.File_envoy_service_auth_v3_external_auth_proto
	var set descriptorpb.FileDescriptorSet
	seen := map[string]bool{}
	var add func(f protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		imports := f.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	add(fd)
	b, err := proto.Marshal(&set)
	if err != nil {
		return fmt.Errorf("encode protoset: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write protoset: %w", err)
	}
	return nil
}

// verify sends every request once over gRPC and checks each decision
// against the one the generator expects, so the numbers that follow measure
// the mix they claim to (right tokens, about 70% allowed). It returns the
// share allowed. It also warms the server's caches, as a server in steady
// state has them.
func verify(ctx context.Context, addr string, reqs []*authv3.CheckRequest, want []bool) (float64, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, fmt.Errorf("verify %s: %w", addr, err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	allowed, wrong := 0, 0
	var first string
	for i, r := range reqs {
		resp, err := client.Check(ctx, r)
		if err != nil {
			return 0, fmt.Errorf("verify %s: request %d: %w", addr, i, err)
		}
		ok := resp.GetStatus().GetCode() == 0
		if ok {
			allowed++
		}
		if ok != want[i] {
			wrong++
			if first == "" {
				http := r.GetAttributes().GetRequest().GetHttp()
				first = fmt.Sprintf("%s %s: allowed=%v, want %v (%s)", http.GetMethod(), http.GetPath(), ok, want[i], resp.GetStatus().GetMessage())
			}
		}
	}
	if wrong > 0 {
		return 0, fmt.Errorf("verify %s: %d of %d requests decided otherwise than expected; first: %s", addr, wrong, len(reqs), first)
	}
	return float64(allowed) / float64(len(reqs)), nil
}

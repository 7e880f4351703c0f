package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
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
	tokens, err := mintTokens(d, secretFile)
	if err != nil {
		return nil, err
	}
	return shape(d.Requests, tokens), nil
}

// mintTokens mints one HS256 token per user of the dataset.
func mintTokens(d *tenantgen.Dataset, secretFile string) (map[string]string, error) {
	now := time.Now()
	tokens := make(map[string]string)
	for _, sub := range d.Subjects() {
		tok, err := identity.SignHS256(secretFile, sub, "", "", tokenTTL, now)
		if err != nil {
			return nil, err
		}
		tokens[sub] = tok
	}
	return tokens, nil
}

// shape turns requests into Envoy's CheckRequests with the users' tokens.
func shape(reqs []tenantgen.Request, tokens map[string]string) []*authv3.CheckRequest {
	out := make([]*authv3.CheckRequest, len(reqs))
	for i, r := range reqs {
		out[i] = r.CheckRequest(tokens[r.User], i)
	}
	return out
}

// freshIDTemplate stands for a fresh item id in ghz's data file: ghz fills
// in a new UUID on every call. It is the call's own UUID (template data, not
// the newUUID function), so the path and the :path header carry the same id.
const freshIDTemplate = "{{.UUID}}"

// itemID matches the item id a generated path may end with (tenantgen's
// {id}s are id-1 to id-500): the policy decides such a path by its
// collection, whatever the id, so any other id gets the same answer.
var itemID = regexp.MustCompile(`/id-[0-9]+$`)

// freshMix is the mix of a portal whose users open items they have not
// opened before: share of the requests (of all of them, chosen among the
// authenticated ones that name an item; a fixed choice, so every run sends
// the same mix) have their item id replaced by id, which the caller makes
// fresh (freshIDTemplate for ghz, a random UUID to verify). Each such
// request misses the decision cache and, stored in it, evicts another. It
// returns the new mix and how many requests carry a fresh id.
func freshMix(reqs []tenantgen.Request, share float64, id string) ([]tenantgen.Request, int, error) {
	var items []int
	for i, r := range reqs {
		// Anonymous requests are never cached: a fresh id changes nothing.
		if r.User != "" && itemID.MatchString(r.Path) {
			items = append(items, i)
		}
	}
	n := int(math.Round(share * float64(len(reqs))))
	if share < 0 || n > len(items) {
		return nil, 0, fmt.Errorf("-fresh-share %g: want 0 to %.2f (%d of the %d requests name an item)",
			share, float64(len(items))/float64(len(reqs)), len(items), len(reqs))
	}
	out := slices.Clone(reqs)
	rng := rand.New(rand.NewPCG(15, 15))
	for _, k := range rng.Perm(len(items))[:n] {
		r := &out[items[k]]
		r.Path = itemID.ReplaceAllLiteralString(r.Path, "/"+id)
	}
	return out, n, nil
}

// withFreshIDs returns reqs (made with freshIDTemplate) with a new random
// UUID in place of each template, as ghz sends them.
func withFreshIDs(reqs []*authv3.CheckRequest) []*authv3.CheckRequest {
	out := make([]*authv3.CheckRequest, len(reqs))
	for i, r := range reqs {
		out[i] = r
		h := r.GetAttributes().GetRequest().GetHttp()
		if !strings.Contains(h.GetPath(), freshIDTemplate) {
			continue
		}
		c := proto.Clone(r).(*authv3.CheckRequest)
		ch := c.GetAttributes().GetRequest().GetHttp()
		id := newUUID()
		ch.Path = strings.ReplaceAll(ch.Path, freshIDTemplate, id)
		ch.Headers[":path"] = strings.ReplaceAll(ch.Headers[":path"], freshIDTemplate, id)
		out[i] = c
	}
	return out
}

// newUUID is a random (version 4) UUID, as ghz's {{.UUID}} is.
func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
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
		var resp *authv3.CheckResponse
		// A decision that overruns --decision-timeout (a server just started
		// on a busy core, its collector still sweeping the build) fails
		// closed with 503 internal_error: that is not the policy's answer,
		// so ask again, a few times, before calling it one.
		for attempt := 0; ; attempt++ {
			resp, err = client.Check(ctx, r)
			if err != nil {
				return 0, fmt.Errorf("verify %s: request %d: %w", addr, i, err)
			}
			if attempt == 3 || !strings.Contains(resp.GetStatus().GetMessage(), "internal_error") {
				break
			}
			time.Sleep(100 * time.Millisecond)
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

package extauthz

import (
	"context"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
)

type fixed struct {
	d   decision.Decision
	got *engine.Request
}

func (f *fixed) Check(_ context.Context, req *engine.Request) engine.Result {
	f.got = req
	return engine.Result{Decision: f.d}
}

// TestEmptyRequestIsADeny: a CheckRequest without HTTP attributes still gets
// a CheckResponse, never an RPC error that failure_mode_allow could allow.
func TestEmptyRequestIsADeny(t *testing.T) {
	f := &fixed{d: decision.Decision{Status: 400, Reason: "bad_path", Headers: []decision.Header{{Name: "x-tenantgate-reason", Value: "bad_path"}}}}
	for _, in := range []*authv3.CheckRequest{nil, {}, {Attributes: &authv3.AttributeContext{}}} {
		resp, err := New(f).Check(context.Background(), in)
		if err != nil || resp.GetDeniedResponse() == nil || resp.GetStatus().GetCode() == 0 {
			t.Fatalf("%v: %v %v", in, resp, err)
		}
		if f.got.Path != "" || f.got.Method != "" {
			t.Errorf("request %+v", f.got)
		}
	}
}

// TestRawHeaderMap: with encode_raw_headers Envoy sends header_map with
// raw_value bytes instead of the headers map.
func TestRawHeaderMap(t *testing.T) {
	f := &fixed{d: decision.Decision{Allowed: true, Status: 200, Reason: "allowed",
		Headers: []decision.Header{{Name: "x-tenantgate-user", Value: "alice"}}}}
	in := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/p", HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: "authorization", RawValue: []byte("Bearer t")},
			{Key: "x-tenantgate-user", RawValue: []byte("forged")},
			{Key: "x-tenantgate-computers", RawValue: []byte("forged")},
		}}},
	}}}
	resp, _ := New(f).Check(context.Background(), in)
	if f.got.Authorization != "Bearer t" {
		t.Errorf("authorization %q", f.got.Authorization)
	}
	ok := resp.GetOkResponse()
	// The forged user header is overwritten, not removed; every other
	// tenantgate header is removed, the forged computers one included.
	if ok == nil || !slices.Contains(ok.GetHeadersToRemove(), "x-tenantgate-computers") ||
		slices.Contains(ok.GetHeadersToRemove(), "x-tenantgate-user") || len(ok.GetHeadersToRemove()) != len(decision.HeaderNames)-1 {
		t.Fatalf("ok response %v", ok)
	}
	if h := ok.GetHeaders()[0]; h.GetHeader().GetValue() != "alice" || h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Errorf("header %v", h)
	}
}

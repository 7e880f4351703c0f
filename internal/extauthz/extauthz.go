// Package extauthz serves Envoy's external authorization API
// (envoy.service.auth.v3.Authorization/Check) over gRPC. It only translates:
// CheckRequest -> engine.Request, and a decision -> CheckResponse.
package extauthz

import (
	"context"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
)

// Server implements authv3.AuthorizationServer.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	checker engine.Checker
}

// New returns a Server answering from checker.
func New(checker engine.Checker) *Server { return &Server{checker: checker} }

// Check never returns an error: an RPC error is what Envoy's
// failure_mode_allow would turn into an allow, so every failure, even a
// request with no HTTP attributes, is a denied CheckResponse.
func (s *Server) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	httpReq := in.GetAttributes().GetRequest().GetHttp()
	req := engine.Request{
		Method:        httpReq.GetMethod(),
		Path:          httpReq.GetPath(),
		Authorization: header(httpReq, "authorization"),
	}
	if httpReq == nil {
		// No request attributes: nothing to decide on. An empty path fails
		// the path checks, so this is a bad_path deny from the policy.
		req = engine.Request{}
	}
	res := s.checker.Check(ctx, &req)
	return Response(res.Decision, httpReq), nil
}

// header returns a request header's value. Envoy sends lower-cased names in
// `headers`, or in `header_map` when encode_raw_headers is set.
func header(h *authv3.AttributeContext_HttpRequest, name string) string {
	if v, ok := h.GetHeaders()[name]; ok {
		return v
	}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		if strings.EqualFold(hv.GetKey(), name) {
			if len(hv.GetRawValue()) > 0 {
				return string(hv.GetRawValue())
			}
			return hv.GetValue()
		}
	}
	return ""
}

// Response builds the CheckResponse for a decision. On allow, every header
// the decision adds overwrites a client-sent copy, and every other
// client-sent x-tenantgate-* header (any case, `_` read as `-`:
// decision.IsTenantgateHeader) is removed, so the upstream sees only
// tenantgate's. (Envoy appends by default, hence OVERWRITE_IF_EXISTS_OR_ADD;
// and a header we set is not also listed for removal, whatever order Envoy
// applies the two lists in.)
func Response(d decision.Decision, httpReq *authv3.AttributeContext_HttpRequest) *authv3.CheckResponse {
	if d.Allowed {
		ok := &authv3.OkHttpResponse{Headers: headerOptions(d.Headers, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)}
		// The request's header names, from `headers` and from `header_map`
		// (sent instead when Envoy's encode_raw_headers is set); a literal
		// here, so the iterator stays on the stack.
		ok.HeadersToRemove = d.HeadersToRemove(func(yield func(string) bool) {
			for k := range httpReq.GetHeaders() {
				if !yield(k) {
					return
				}
			}
			for _, hv := range httpReq.GetHeaderMap().GetHeaders() {
				if !yield(hv.GetKey()) {
					return
				}
			}
		})
		return &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	hdrs := headerOptions(d.Headers, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	hdrs = append(hdrs, &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	})
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(d.Status)), Message: d.Reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: hdrs,
			Body:    string(d.Body()),
		}},
	}
}

func headerOptions(hs []decision.Header, action corev3.HeaderValueOption_HeaderAppendAction) []*corev3.HeaderValueOption {
	out := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		out[i] = &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
			AppendAction: action,
		}
	}
	return out
}

// grpcCode is the CheckResponse status for a deny: Envoy only looks at OK or
// not, but the code makes the deny readable in Envoy's logs and traces.
func grpcCode(status int) code.Code {
	switch status {
	case 400:
		return code.Code_INVALID_ARGUMENT
	case 401:
		return code.Code_UNAUTHENTICATED
	case 403:
		return code.Code_PERMISSION_DENIED
	default:
		return code.Code_UNAVAILABLE
	}
}

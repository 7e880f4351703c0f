package tenantgen

import (
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// CheckRequest returns r shaped as Envoy's ext_authz filter sends it over
// gRPC: source and destination addresses and the HTTP attributes, with the
// pseudo-headers and the usual headers of a browser request through a proxy
// (lower-case names). token is the bearer token ("" sends no Authorization
// header); seq makes the request id unique. The benchmarks send these, so
// that the cost of decoding a real-sized message is part of what they
// measure.
func (r Request) CheckRequest(token string, seq int) *authv3.CheckRequest {
	id := "bench-" + strconv.Itoa(seq)
	headers := map[string]string{
		":authority":        "portal.example",
		":method":           r.Method,
		":path":             r.Path,
		":scheme":           "https",
		"accept":            "application/json",
		"user-agent":        "Mozilla/5.0 (X11; Linux x86_64) tenantgate-bench",
		"x-forwarded-for":   "203.0.113.7",
		"x-forwarded-proto": "https",
		"x-request-id":      id,
	}
	if token != "" {
		headers["authorization"] = "Bearer " + token
	}
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("203.0.113.7", 51234)},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.0.0.10", 8443)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       id,
			Method:   r.Method,
			Headers:  headers,
			Path:     r.Path,
			Host:     "portal.example",
			Scheme:   "https",
			Protocol: "HTTP/1.1",
		}},
	}}
}

// Package decision holds the value every authorization answer is made of: allowed
// or not, the HTTP status, the reason code and the headers to add. The gRPC and
// HTTP front ends both turn one Decision into their own wire format, so the
// status-to-error mapping and the JSON body live here, once.
package decision

import (
	"encoding/json"
	"iter"
	"strings"
)

// Reason codes of the authorization model (tenantgate help requests). They double as
// metric labels, as the x-tenantgate-reason header and as decision-log fields.
const (
	ReasonAllowed           = "allowed"
	ReasonBadPath           = "bad_path"
	ReasonUnauthenticated   = "unauthenticated"
	ReasonUnknownUser       = "unknown_user"
	ReasonUserDisabled      = "user_disabled"
	ReasonCustomerDisabled  = "customer_disabled"
	ReasonMethodNotAllowed  = "method_not_allowed"
	ReasonNoRoute           = "no_route"
	ReasonOutsideTenant     = "outside_tenant"
	ReasonModuleUnavailable = "module_unavailable"
	ReasonRoleForbids       = "role_forbids"
	ReasonLocationForbidden = "location_forbidden"
	ReasonComputerForbidden = "computer_forbidden"
	ReasonInternalError     = "internal_error"
)

// Reasons lists every reason code, allowed first; metrics pre-create a series
// for each so that dashboards see zeros rather than gaps.
var Reasons = []string{
	ReasonAllowed, ReasonBadPath, ReasonUnauthenticated, ReasonUnknownUser,
	ReasonUserDisabled, ReasonCustomerDisabled, ReasonMethodNotAllowed,
	ReasonNoRoute, ReasonOutsideTenant, ReasonModuleUnavailable,
	ReasonRoleForbids, ReasonLocationForbidden, ReasonComputerForbidden,
	ReasonInternalError,
}

// Header names tenantgate adds. Every client-sent header with HeaderPrefix is
// removed before a request reaches the upstream.
const (
	HeaderPrefix    = "x-tenantgate-"
	HeaderReason    = "x-tenantgate-reason"
	HeaderUser      = "x-tenantgate-user"
	HeaderRole      = "x-tenantgate-role"
	HeaderCustomer  = "x-tenantgate-customer"
	HeaderLocations = "x-tenantgate-locations"
	HeaderComputers = "x-tenantgate-computers"
	// HeaderDryRunDeny carries, in dry-run mode, the reason a request that
	// was let through would have been denied with.
	HeaderDryRunDeny = "x-tenantgate-dry-run-deny"
	// HeaderWWWAuthenticate is the challenge of a 401 (RFC 6750).
	HeaderWWWAuthenticate = "www-authenticate"
)

// HeaderNames lists every x-tenantgate-* header tenantgate itself sets.
var HeaderNames = []string{
	HeaderReason, HeaderUser, HeaderRole, HeaderCustomer,
	HeaderLocations, HeaderComputers, HeaderDryRunDeny,
}

// Header is one response header; names are lower-case.
type Header struct {
	Name  string
	Value string
}

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	Status  int    // 200 on allow; 400, 401, 403 or 503 on deny
	Reason  string // one of the Reason* codes
	// Headers are added to the upstream request on allow, and to the client
	// response on deny (x-tenantgate-reason, www-authenticate).
	Headers []Header
}

// internalError is shared: it is immutable and returned on every failure path,
// so failing closed costs no allocation.
var internalError = Decision{
	Status:  503,
	Reason:  ReasonInternalError,
	Headers: []Header{{Name: HeaderReason, Value: ReasonInternalError}},
}

// Internal is the fail-closed answer: an evaluation error, a deadline overrun,
// no snapshot loaded yet. It is retryable (503), unlike a 403.
func Internal() Decision { return internalError }

// ErrorWord is the "error" field of the JSON body for a deny's status.
func (d Decision) ErrorWord() string {
	switch d.Status {
	case 400:
		return "bad_request"
	case 401:
		return "unauthenticated"
	case 403:
		return "forbidden"
	default:
		return "unavailable"
	}
}

// Body is the JSON body of a deny: {"error": ..., "reason": ...}.
func (d Decision) Body() []byte {
	b, _ := json.Marshal(struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}{d.ErrorWord(), d.Reason}) // cannot fail: two strings
	return b
}

// IsTenantgateHeader reports whether a header name is one of tenantgate's
// (tenantgate help requests): lower-cased, with `_` read as `-`, it starts with
// HeaderPrefix. Many stacks (CGI, PHP, WSGI, nginx's $http_ variables) map
// `x_tenantgate_user` and `x-tenantgate-user` to one variable, so a client
// must not pass either spelling off as tenantgate's.
func IsTenantgateHeader(name string) bool {
	if len(name) < len(HeaderPrefix) {
		return false
	}
	for i := range len(HeaderPrefix) {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != HeaderPrefix[i] {
			return false
		}
	}
	return true
}

// HeadersToRemove lists, for an allow, the request headers to strip before
// the request goes upstream, lower-case: every header tenantgate may set
// that this decision does not (whether or not the client's copy was shown
// to us: a proxy may forward only some headers), and every other header
// among sent (the request's header names, any case) that IsTenantgateHeader,
// in the spelling it was sent with (Envoy removes by exact name, so
// `x_tenantgate_user` is listed even when the decision sets
// `x-tenantgate-user`). A header the decision sets is never listed: it is
// overwritten, whatever order Envoy applies the two lists in. Both front
// ends use it, so gRPC's headers_to_remove and the HTTP mode's
// x-envoy-auth-headers-to-remove always agree.
//
// The cost is linear in the number of names sent: a client decides how many
// it sends (tens of thousands fit in a gRPC message), so duplicates are
// found with a map, built only once a client sends a name of ours.
func (d Decision) HeadersToRemove(sent iter.Seq[string]) []string {
	// One variable for the loop body to capture: range-over-func moves the
	// body into a closure, and each captured variable is one allocation.
	var st struct {
		out    []string
		listed map[string]struct{}
	}
	st.out = make([]string, 0, len(HeaderNames))
	for _, name := range HeaderNames {
		if _, set := d.Header(name); !set {
			st.out = append(st.out, name)
		}
	}
	for name := range sent {
		if !IsTenantgateHeader(name) {
			continue
		}
		if st.listed == nil {
			st.listed = make(map[string]struct{}, len(st.out)+1)
			for _, n := range st.out {
				st.listed[n] = struct{}{}
			}
		}
		lower := strings.ToLower(name) // no copy when already lower-case, as Envoy sends them
		if _, dup := st.listed[lower]; dup {
			continue
		}
		if _, set := d.Header(lower); set {
			continue
		}
		st.listed[lower] = struct{}{}
		st.out = append(st.out, lower)
	}
	return st.out
}

// Header returns the value of the named header and whether it is present.
func (d Decision) Header(name string) (string, bool) {
	for _, h := range d.Headers {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

// WithHeader returns d with the header name set to value: replaced where d
// has it, added where not. d's own header slice is left as it was (a
// decision may be cached and shared).
func (d Decision) WithHeader(name, value string) Decision {
	hs := make([]Header, 0, len(d.Headers)+1)
	found := false
	for _, h := range d.Headers {
		if h.Name == name {
			h.Value, found = value, true
		}
		hs = append(hs, h)
	}
	if !found {
		hs = append(hs, Header{Name: name, Value: value})
	}
	d.Headers = hs
	return d
}

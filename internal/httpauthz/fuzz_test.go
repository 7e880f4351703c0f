package httpauthz

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
)

// recorder is a Checker that records what the handler asked and answers a
// fixed deny.
type recorder struct{ got *engine.Request }

func (r *recorder) Check(_ context.Context, req *engine.Request) engine.Result {
	c := *req
	r.got = &c
	return engine.Result{Decision: decision.Decision{Status: 403, Reason: decision.ReasonNoRoute,
		Headers: []decision.Header{{Name: decision.HeaderReason, Value: decision.ReasonNoRoute}}}}
}

// FuzzOriginal parses a raw HTTP request the way net/http's server does and
// checks what the HTTP mode makes of it (tenantgate help http-mode): for
// <METHOD> /authz/<path> the method is the request's own and the target is
// exactly the raw request target minus /authz; otherwise it is exactly the
// X-Forwarded-Uri value or the X-Original-URI one, with the matching method
// header; with neither, or with an ambiguous pair (a header twice, or both
// pairs present and disagreeing), the target is empty (a bad_path deny).
// Never decoded, cleaned or re-encoded. The handler hands exactly that, and the
// Authorization header, to the checker, and writes the checker's decision.
func FuzzOriginal(f *testing.F) {
	for _, s := range [][6]string{
		{"GET", "/authz/api/v1/customers/contoso/users", "", "", "", ""},
		{"DELETE", "/authz/api/v1/customers/c/users/alice%40contoso.example?x=%2F", "", "", "", ""},
		{"GET", "/authz/api/v1/customers/contoso/../northwind//users/%2e%2e", "", "", "", ""},
		{"GET", "/authz", "POST", "/api/v1/customers/contoso/vbr-jobs", "", ""},
		{"GET", "/authz?x=1", "PUT", "/a/%2F/../b", "GET", "/ignored"},
		{"GET", "/authz", "", "", "PATCH", "/api/v1/customers/contoso/users"},
		{"GET", "/authz", "", "", "", ""},
		{"GET", "/authzz/x", "GET", "/y", "", ""},
		{"get", "/authz//", "", "", "", ""},
		{"OPTIONS", "*", "", "", "", ""},
		{"GET", "http://evil.example/authz/x", "", "", "", ""},
		{"GET", "/authz", "GET", "/a\r\nX-Forwarded-Uri: /b", "", ""},
		{"GET", "/authz", "GET", "/same", "GET", "/same"},
		{"GET", "/authz/caf\xc3\xa9/\x7f", "", "  /padded  ", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4], s[5])
	}
	f.Fuzz(func(t *testing.T, method, target, fwdMethod, fwdURI, origMethod, origURI string) {
		var raw strings.Builder
		raw.WriteString(method + " " + target + " HTTP/1.1\r\nHost: authz.local\r\nAuthorization: Bearer t0k\r\n")
		for _, h := range [][2]string{
			{"X-Forwarded-Method", fwdMethod}, {"X-Forwarded-Uri", fwdURI},
			{"X-Original-Method", origMethod}, {"X-Original-URI", origURI},
		} {
			if h[1] != "" {
				raw.WriteString(h[0] + ": " + h[1] + "\r\n")
			}
		}
		raw.WriteString("\r\n")
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw.String())))
		if err != nil {
			return // net/http refuses it before any handler runs
		}

		// What the server saw, and what tenantgate help http-mode (and the README's
		// rule for ambiguous requests) makes of it.
		one := func(name string) (string, bool) {
			v := r.Header.Values(name)
			if len(v) == 1 {
				return v[0], true
			}
			return "", len(v) == 0
		}
		fm, ok1 := one("X-Forwarded-Method")
		fu, ok2 := one("X-Forwarded-Uri")
		om, ok3 := one("X-Original-Method")
		ou, ok4 := one("X-Original-Uri")
		var wantMethod, wantTarget string
		switch {
		case strings.HasPrefix(r.RequestURI, "/authz/"):
			wantMethod, wantTarget = r.Method, r.RequestURI[len("/authz"):]
		case !ok1 || !ok2 || !ok3 || !ok4:
			// A header given twice: ambiguous, never guessed at.
		case fu != "" && ou != "":
			if fm == om && fu == ou {
				wantMethod, wantTarget = fm, fu
			}
		case fu != "":
			wantMethod, wantTarget = fm, fu
		default:
			wantMethod, wantTarget = om, ou
		}
		gotMethod, gotTarget := Original(r)
		if gotMethod != wantMethod || gotTarget != wantTarget {
			t.Fatalf("Original(%q with %v) = %q %q, want %q %q", r.RequestURI, r.Header, gotMethod, gotTarget, wantMethod, wantTarget)
		}
		wantMatch := r.RequestURI == Prefix || strings.HasPrefix(r.RequestURI, Prefix+"/") || strings.HasPrefix(r.RequestURI, Prefix+"?")
		if Matches(r.RequestURI) != wantMatch {
			t.Fatalf("Matches(%q) = %t, want %t", r.RequestURI, !wantMatch, wantMatch)
		}

		rec := &recorder{}
		w := httptest.NewRecorder()
		New(rec).ServeHTTP(w, r)
		if rec.got == nil || rec.got.Method != wantMethod || rec.got.Path != wantTarget || rec.got.Authorization != "Bearer t0k" {
			t.Fatalf("the checker was asked %+v, want %q %q with the Authorization header", rec.got, wantMethod, wantTarget)
		}
		if w.Code != 403 || w.Header().Get("X-Tenantgate-Reason") != decision.ReasonNoRoute {
			t.Fatalf("response %d %v, want the checker's 403 no_route", w.Code, w.Header())
		}
	})
}

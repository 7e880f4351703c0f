package httpauthz

import (
	"net/http"
	"testing"
)

func TestOriginal(t *testing.T) {
	cases := []struct {
		name       string
		method     string
		target     string
		headers    [][2]string
		wantMethod string
		wantTarget string
	}{
		{"envoy prefix form keeps the raw target", "PUT", "/authz/api/v1/customers/c/users/a%40b?x=1", nil, "PUT", "/api/v1/customers/c/users/a%40b?x=1"},
		{"envoy prefix form dot segments untouched", "GET", "/authz/api/../x", nil, "GET", "/api/../x"},
		{"forwarded pair", "GET", "/authz", [][2]string{{"X-Forwarded-Method", "POST"}, {"X-Forwarded-Uri", "/p?q"}}, "POST", "/p?q"},
		{"original pair", "GET", "/authz", [][2]string{{"X-Original-Method", "DELETE"}, {"X-Original-URI", "/p"}}, "DELETE", "/p"},
		{"both pairs agreeing", "GET", "/authz", [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/p"}, {"X-Forwarded-Method", "GET"}, {"X-Forwarded-Uri", "/p"}}, "GET", "/p"},
		{"client-forged forwarded uri beside nginx's original", "GET", "/authz", [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/mine"}, {"X-Forwarded-Uri", "/theirs"}}, "", ""},
		{"pairs disagreeing on method", "GET", "/authz", [][2]string{{"X-Original-Method", "GET"}, {"X-Original-URI", "/p"}, {"X-Forwarded-Method", "DELETE"}, {"X-Forwarded-Uri", "/p"}}, "", ""},
		{"uri header twice", "GET", "/authz", [][2]string{{"X-Forwarded-Uri", "/a"}, {"X-Forwarded-Uri", "/b"}}, "", ""},
		{"no headers", "GET", "/authz", nil, "", ""},
		{"query on /authz is header form", "GET", "/authz?x=1", [][2]string{{"X-Forwarded-Uri", "/p"}, {"X-Forwarded-Method", "GET"}}, "GET", "/p"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Method: tc.method, RequestURI: tc.target, Header: http.Header{}}
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			m, p := Original(r)
			if m != tc.wantMethod || p != tc.wantTarget {
				t.Fatalf("got %q %q, want %q %q", m, p, tc.wantMethod, tc.wantTarget)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	for target, want := range map[string]bool{"/authz": true, "/authz/x": true, "/authz?x": true, "/authzx": false, "/healthz": false, "/": false} {
		if Matches(target) != want {
			t.Errorf("Matches(%q) = %v", target, !want)
		}
	}
}

package engine

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
)

// TestDenyExplained: a 401 to a request that sent a bearer token carries
// RFC 6750's invalid_token, one without credentials a bare challenge; the
// log says why a token or a path was refused, once per cause per interval,
// and never quotes the token or the path.
func TestDenyExplained(t *testing.T) {
	var logs syncbuf.Buffer
	e, secret := testEngine(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	clock := time.Unix(1000, 0)
	e.causes.now = func() time.Time { return clock }
	ctx := context.Background()
	path := "/api/v1/customers/contoso/users"
	tok, err := identity.SignHS256(secret, "alice@contoso.example", "", "", time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired := tok

	challenge := func(auth string) string {
		r := e.Check(ctx, &Request{Method: "GET", Path: path, Authorization: auth})
		if r.Reason != "unauthenticated" {
			t.Fatalf("%q: %s, want unauthenticated", auth, r.Reason)
		}
		v, _ := r.Header("www-authenticate")
		return v
	}
	for _, tc := range []struct{ auth, want string }{
		{"", "Bearer"},
		{"Basic dXNlcjpwdw==", "Bearer"},
		{"Bearer not.a.token", `Bearer error="invalid_token"`},
		{"bearer " + expired, `Bearer error="invalid_token"`},
	} {
		if got := challenge(tc.auth); got != tc.want {
			t.Errorf("%.20q: www-authenticate %q, want %q", tc.auth, got, tc.want)
		}
	}
	challenge("Bearer " + expired) // a second expired token within the interval
	clock = clock.Add(2 * causeLogInterval)
	challenge("Bearer " + expired) // and one after it

	bad := e.Check(ctx, &Request{Method: "GET", Path: "/api/v1/customers/contoso/users/a b", Authorization: mustToken(t, secret, "alice@contoso.example")})
	if bad.Reason != "bad_path" {
		t.Fatalf("raw space: %s", bad.Reason)
	}

	out := logs.String()
	if n := strings.Count(out, `cause=expired`); n != 2 {
		t.Errorf("%d log lines for expired tokens, want 2 (one per interval):\n%s", n, out)
	}
	if !strings.Contains(out, "more_since_last_logged=1") {
		t.Errorf("the second expired line does not count the one suppressed:\n%s", out)
	}
	for _, want := range []string{`cause=malformed`, `level=INFO`, `cause="bad_path: raw space"`, "offset="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, expired[:20]) || strings.Contains(out, "a b") {
		t.Errorf("the log quotes a token or a path:\n%s", out)
	}
}

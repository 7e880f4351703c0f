package identity

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// cached reports whether token is in v's cache.
func cached(v *Verifier, token string) bool {
	_, ok := v.cache.get(token)
	return ok
}

func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

func TestCacheHonoursTime(t *testing.T) {
	secretFile := writeFile(t, "secret", []byte(testSecret))
	type step struct {
		at         time.Duration // from testNow
		wantErr    error
		wantCached bool // in the cache after this step
	}
	tests := []struct {
		name   string
		claims map[string]any
		steps  []step
	}{
		{
			name:   "expired after caching",
			claims: claims(map[string]any{"exp": testNow.Add(5 * time.Minute).Unix()}),
			steps: []step{
				{0, nil, true},
				{5*time.Minute + 59*time.Second, nil, true}, // within leeway
				{5*time.Minute + 60*time.Second, errExpired, false},
				{time.Hour, errExpired, false},
				{0, nil, true}, // verified again, from scratch
			},
		},
		{
			name:   "nbf after caching",
			claims: claims(map[string]any{"nbf": testNow.Add(2 * time.Minute).Unix()}),
			steps: []step{
				{3 * time.Minute, nil, true},
				{30 * time.Second, errNotYetValid, true}, // the clock went back: refused, kept
				{time.Minute, nil, true},                 // nbf - leeway
			},
		},
		{
			name: "not valid yet at first use is not cached",
			claims: claims(map[string]any{
				"nbf": testNow.Add(10 * time.Minute).Unix(),
				"exp": testNow.Add(20 * time.Minute).Unix(),
			}),
			steps: []step{
				{0, errNotYetValid, false},
				{9 * time.Minute, nil, true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := load(t, Config{HS256SecretFile: secretFile, Leeway: time.Minute})
			tok := mint(t, jwa.HS256(), []byte(testSecret), "", tt.claims)
			for i, s := range tt.steps {
				sub, err := v.Subject("Bearer "+tok, testNow.Add(s.at))
				if !errors.Is(err, s.wantErr) || (err == nil && sub != testSub) {
					t.Fatalf("step %d (at %s): Subject = %q, %v; want error %v", i, s.at, sub, err, s.wantErr)
				}
				if got := cached(v, tok); got != s.wantCached {
					t.Fatalf("step %d (at %s): cached = %t, want %t", i, s.at, got, s.wantCached)
				}
			}
		})
	}
}

// TestCacheAnswersWithoutVerifying shows that a hit does not verify again:
// with the verifier's secret swapped behind its back, a cached token is still
// accepted while the same claims under a new signature are not.
func TestCacheAnswersWithoutVerifying(t *testing.T) {
	v := load(t, Config{HS256SecretFile: writeFile(t, "secret", []byte(testSecret))})
	first := mint(t, jwa.HS256(), []byte(testSecret), "", claims(nil))
	second := mint(t, jwa.HS256(), []byte(testSecret), "", claims(map[string]any{"jti": "2"}))
	if _, err := v.Subject("Bearer "+first, testNow); err != nil {
		t.Fatal(err)
	}
	v.secret = []byte(strings.Repeat("x", 40))
	if sub, err := v.Subject("Bearer "+first, testNow); err != nil || sub != testSub {
		t.Fatalf("cached token: Subject = %q, %v", sub, err)
	}
	if _, err := v.Subject("Bearer "+second, testNow); !errors.Is(err, errSignature) {
		t.Fatalf("uncached token: err = %v, want %v", err, errSignature)
	}
}

// TestCachePerVerifier: a reload builds a new Verifier whose cache starts
// empty, so a rotated secret refuses tokens the old Verifier had cached.
func TestCachePerVerifier(t *testing.T) {
	secretFile := writeFile(t, "secret", []byte(testSecret))
	old := load(t, Config{HS256SecretFile: secretFile})
	oldTok := mint(t, jwa.HS256(), []byte(testSecret), "", claims(nil))
	if _, err := old.Subject("Bearer "+oldTok, testNow); err != nil {
		t.Fatal(err)
	}

	rotated := testSecret + "-rotated"
	if err := os.WriteFile(secretFile, []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloaded := load(t, Config{HS256SecretFile: secretFile})
	newTok := mint(t, jwa.HS256(), []byte(rotated), "", claims(nil))

	tests := []struct {
		name    string
		v       *Verifier
		tok     string
		wantErr error
	}{
		{"reloaded refuses the old token", reloaded, oldTok, errSignature},
		{"reloaded accepts the new token", reloaded, newTok, nil},
		{"old still answers from its cache", old, oldTok, nil},
		{"old refuses the new token", old, newTok, errSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.v.Subject("Bearer "+tt.tok, testNow); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if cached(reloaded, oldTok) {
		t.Fatal("the reloaded verifier cached a token it refused")
	}
}

func TestCacheKeepsOnlySuccesses(t *testing.T) {
	secret := []byte(testSecret)
	v := load(t, Config{HS256SecretFile: writeFile(t, "secret", secret), Issuer: "https://idp.example"})
	good := claims(map[string]any{"iss": "https://idp.example"})
	tests := []struct {
		name       string
		tok        string
		wantErr    error
		wantCached bool
	}{
		{"accepted", mint(t, jwa.HS256(), secret, "", good), nil, true},
		{"accepted but too big to cache", mint(t, jwa.HS256(), secret, "", claims(map[string]any{
			"iss": "https://idp.example", "pad": strings.Repeat("p", maxCachedToken)})), nil, false},
		{"wrong issuer", mint(t, jwa.HS256(), secret, "", claims(map[string]any{"iss": "https://other.example"})), errIssuer, false},
		{"bad signature", mint(t, jwa.HS256(), []byte(testSecret+"!"), "", good), errSignature, false},
		{"expired", mint(t, jwa.HS256(), secret, "", claims(map[string]any{
			"iss": "https://idp.example", "exp": testNow.Add(-time.Hour).Unix()})), errExpired, false},
		{"no sub", mint(t, jwa.HS256(), secret, "", claims(map[string]any{"iss": "https://idp.example", "sub": nil})), errMissingSub, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Subject("Bearer "+tt.tok, testNow); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := cached(v, tt.tok); got != tt.wantCached {
				t.Fatalf("cached = %t, want %t", got, tt.wantCached)
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	c := newTokenCache()
	const limit = cacheShards * cacheShardLen
	e := entry{sub: testSub, validity: validity{until: testNow.Add(time.Hour)}}
	last := ""
	for i := range limit + limit/2 {
		last = fmt.Sprintf("token-%d", i)
		c.put(last, e)
	}
	if n := c.len(); n > limit || n < limit*9/10 {
		t.Fatalf("cache holds %d tokens after %d puts; want at most %d and most of it used", n, limit+limit/2, limit)
	}
	if _, ok := c.get(last); !ok {
		t.Fatal("the last token put was evicted")
	}
}

func TestSubjectConcurrent(t *testing.T) {
	secret := []byte(testSecret)
	v := load(t, Config{HS256SecretFile: writeFile(t, "secret", secret), Leeway: time.Minute})
	type want struct {
		authz string
		sub   string // "" = refused
	}
	var tokens []want
	for i := range 8 {
		sub := fmt.Sprintf("user-%d@contoso.example", i)
		tokens = append(tokens, want{"Bearer " + mint(t, jwa.HS256(), secret, "", claims(map[string]any{"sub": sub})), sub})
	}
	tokens = append(tokens,
		want{"Bearer " + mint(t, jwa.HS256(), []byte(testSecret+"!"), "", claims(nil)), ""},
		want{"Basic x", ""},
	)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				w := tokens[(g+i)%len(tokens)]
				sub, err := v.Subject(w.authz, testNow)
				if sub != w.sub || (err == nil) != (w.sub != "") {
					errs <- fmt.Errorf("goroutine %d: Subject(%.20q) = %q, %v; want %q", g, w.authz, sub, err, w.sub)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSubjectCachedAllocs(t *testing.T) {
	secret := []byte(testSecret)
	v := load(t, Config{HS256SecretFile: writeFile(t, "secret", secret), Leeway: time.Minute})
	tok := "Bearer " + mint(t, jwa.HS256(), secret, "", claims(nil))
	withNbf := "Bearer " + mint(t, jwa.HS256(), secret, "", claims(map[string]any{"nbf": testNow.Unix()}))
	for _, authz := range []string{tok, withNbf} {
		if _, err := v.Subject(authz, testNow); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		authz   string
		now     time.Time
		wantErr error
	}{
		{"cached hit", tok, testNow, nil},
		{"cached, not valid yet", withNbf, testNow.Add(-time.Hour), errNotYetValid},
		{"not a bearer token", "Basic x", testNow, errNoBearer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(100, func() { _, err = v.Subject(tt.authz, tt.now) })
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if allocs != 0 {
				t.Fatalf("%v allocations per call, want 0", allocs)
			}
		})
	}
}

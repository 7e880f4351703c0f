package identity

import (
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// benchSetup returns a verifier and an Authorization value for alg.
func benchSetup(b *testing.B, alg jwa.SignatureAlgorithm) (*Verifier, string) {
	b.Helper()
	cfg := Config{Leeway: time.Minute}
	var tok string
	switch alg {
	case jwa.HS256():
		cfg.HS256SecretFile = writeFile(b, "secret", []byte(testSecret))
		tok = mint(b, alg, []byte(testSecret), "", claims(nil))
	case jwa.RS256():
		cfg.JWKSFile = standardJWKS(b)
		tok = mint(b, alg, keys(b).rsa, "rsa-1", claims(nil))
	default:
		b.Fatalf("no benchmark setup for %s", alg)
	}
	return load(b, cfg), "Bearer " + tok
}

func benchCached(b *testing.B, alg jwa.SignatureAlgorithm) {
	v, authz := benchSetup(b, alg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Subject(authz, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// benchUncached runs what Subject runs on a cache miss, minus the insert.
func benchUncached(b *testing.B, alg jwa.SignatureAlgorithm) {
	v, authz := benchSetup(b, alg)
	b.ReportAllocs()
	for b.Loop() {
		tok, err := bearerToken(authz)
		if err != nil {
			b.Fatal(err)
		}
		e, err := v.verify(tok)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.check(testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubjectHS256Cached(b *testing.B)   { benchCached(b, jwa.HS256()) }
func BenchmarkSubjectHS256Uncached(b *testing.B) { benchUncached(b, jwa.HS256()) }
func BenchmarkSubjectRS256Cached(b *testing.B)   { benchCached(b, jwa.RS256()) }
func BenchmarkSubjectRS256Uncached(b *testing.B) { benchUncached(b, jwa.RS256()) }

// BenchmarkSubjectCachedParallel measures cache contention: every goroutine
// asks for the same token, so all of them hit one shard.
func BenchmarkSubjectCachedParallel(b *testing.B) {
	v, authz := benchSetup(b, jwa.HS256())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Subject(authz, testNow); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

package identity

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// FuzzSubject checks, for any Authorization value and time, that Subject
// never panics, that an accepted token's signature verifies with one of the
// configured keys (checked independently with jwx) and that it is unexpired
// and valid at now, and that asking again (now from the cache) gives the same
// answer.
func FuzzSubject(f *testing.F) {
	secret := []byte(testSecret)
	// A fixed Ed25519 seed keeps the seed corpus valid from run to run.
	ed := ed25519.NewKeyFromSeed([]byte("tenantgate-identity-fuzz-seed-32"))
	cfg := Config{
		HS256SecretFile: writeFile(f, "secret", append([]byte(testSecret), '\n')),
		JWKSFile:        writeJWKS(f, jwkOf(f, ed.Public(), "ed-1", "EdDSA")),
		Leeway:          time.Minute,
	}
	const leeway = time.Minute

	now := testNow.Unix()
	hs := mint(f, jwa.HS256(), secret, "", claims(nil))
	f.Add("Bearer "+hs, now)
	f.Add("bearer\t"+hs, now)
	f.Add("BEARER  "+hs, now+300+59)
	f.Add("Bearer "+hs, now+300+60)
	f.Add("Bearer "+mint(f, jwa.EdDSA(), ed, "ed-1", claims(nil)), now)
	f.Add("Bearer "+mint(f, jwa.EdDSA(), ed, "", claims(map[string]any{"nbf": now + 100})), now)
	f.Add("Bearer "+mint(f, jwa.EdDSA(), ed, "ed-2", claims(nil)), now)
	f.Add("Bearer "+mint(f, jwa.HS256(), secret, "", claims(map[string]any{"sub": ""})), now)
	f.Add("Bearer "+mint(f, jwa.HS256(), secret, "", claims(map[string]any{"exp": nil})), now)
	f.Add("Bearer "+mint(f, jwa.HS256(), secret, "", claims(map[string]any{"exp": "1700000300.5"})), now)
	f.Add("Bearer "+raw(f, map[string]any{"alg": "none"}, claims(nil), "x"), now)
	f.Add("Bearer "+raw(f, map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, claims(nil), "x"), now)
	f.Add("Bearer a.b.c", now)
	f.Add("Basic dXNlcjpwYXNz", now)
	f.Add("", int64(0))

	v := load(f, cfg)
	f.Fuzz(func(t *testing.T, authorization string, unix int64) {
		at := time.Unix(unix, 0)
		sub, err := v.Subject(authorization, at)
		again, err2 := v.Subject(authorization, at)
		if again != sub || (err == nil) != (err2 == nil) {
			t.Fatalf("second call disagrees: (%q, %v) then (%q, %v)", sub, err, again, err2)
		}
		if err != nil {
			if sub != "" {
				t.Fatalf("Subject returned %q with error %v", sub, err)
			}
			return
		}
		if sub == "" {
			t.Fatal("accepted with an empty subject")
		}
		tok, err := bearerToken(authorization)
		if err != nil {
			t.Fatalf("accepted, but bearerToken fails: %v", err)
		}
		// jws.WithKey verifies with the alg given here whatever the header
		// says, so the header's alg is compared separately.
		msg, err := jws.Parse([]byte(tok), jws.WithCompact())
		if err != nil || len(msg.Signatures()) != 1 {
			t.Fatalf("accepted, but jws.Parse fails: %v", err)
		}
		alg, _ := msg.Signatures()[0].ProtectedHeaders().Algorithm()
		var verifyErr error
		switch alg {
		case jwa.HS256():
			_, verifyErr = jws.Verify([]byte(tok), jws.WithKey(jwa.HS256(), secret))
		case jwa.EdDSA():
			_, verifyErr = jws.Verify([]byte(tok), jws.WithKey(jwa.EdDSA(), ed.Public()))
		default:
			t.Fatalf("accepted with header alg %q", alg)
		}
		if verifyErr != nil {
			t.Fatalf("accepted, but the %s signature does not verify: %v", alg, verifyErr)
		}
		parsed, err := jwt.ParseInsecure([]byte(tok))
		if err != nil {
			t.Fatalf("accepted, but the claims do not parse: %v", err)
		}
		if s, _ := parsed.Subject(); s != sub {
			t.Fatalf("Subject = %q, token sub = %q", sub, s)
		}
		exp, ok := parsed.Expiration()
		if !ok || !at.Before(exp.Add(leeway)) {
			t.Fatalf("accepted at %s, exp %s (present %t)", at, exp, ok)
		}
		if nbf, ok := parsed.NotBefore(); ok && at.Before(nbf.Add(-leeway)) {
			t.Fatalf("accepted at %s, nbf %s", at, nbf)
		}
	})
}

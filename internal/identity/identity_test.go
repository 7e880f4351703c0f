package identity

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

type subjectCase struct {
	name    string
	v       *Verifier
	authz   string
	now     time.Time
	wantErr error // nil: accepted with testSub
}

func TestSubject(t *testing.T) {
	k := keys(t)
	secretFile := writeFile(t, "secret", []byte(testSecret+"\n"))
	jwksFile := standardJWKS(t)

	hs := load(t, Config{HS256SecretFile: secretFile, Leeway: time.Minute})
	ks := load(t, Config{JWKSFile: jwksFile, Leeway: time.Minute})
	both := load(t, Config{HS256SecretFile: secretFile, JWKSFile: jwksFile, Leeway: time.Minute})
	strict := load(t, Config{HS256SecretFile: secretFile, Issuer: "https://idp.example", Audience: "tenantgate", Leeway: time.Minute})
	noLeeway := load(t, Config{HS256SecretFile: secretFile})
	capped := load(t, Config{HS256SecretFile: secretFile, Leeway: time.Hour})

	secret := []byte(testSecret)
	hs256 := func(c map[string]any) string { return mint(t, jwa.HS256(), secret, "", c) }
	valid := hs256(claims(nil))
	at := func(d time.Duration) int64 { return testNow.Add(d).Unix() }

	// Key confusion: HS256 "signed" with the RSA public key, in every form an
	// attacker might guess a careless verifier feeds to HMAC.
	pkix, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pubJWK, err := json.Marshal(jwkOf(t, &k.rsa.PublicKey, "rsa-1", "RS256"))
	if err != nil {
		t.Fatal(err)
	}
	confusion := map[string][]byte{
		"PEM":     pubPEM,
		"DER":     pkix,
		"PKCS1":   x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey),
		"JWK":     pubJWK,
		"modulus": k.rsa.N.Bytes(),
	}

	tests := []subjectCase{
		// Accepted, one per algorithm and key-selection path.
		{"HS256", hs, "Bearer " + valid, testNow, nil},
		{"RS256 by kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsa, "rsa-1", claims(nil)), testNow, nil},
		{"RS256 without kid, key without kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsaNoKid, "", claims(nil)), testNow, nil},
		{"RS256 without kid, key with kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsa, "", claims(nil)), testNow, nil},
		{"ES256 by kid, JWK without alg", ks, "Bearer " + mint(t, jwa.ES256(), k.ec, "ec-1", claims(nil)), testNow, nil},
		{"ES256 without kid", ks, "Bearer " + mint(t, jwa.ES256(), k.ec, "", claims(nil)), testNow, nil},
		{"EdDSA by kid", ks, "Bearer " + mint(t, jwa.EdDSA(), k.ed, "ed-1", claims(nil)), testNow, nil},
		{"both files: HS256", both, "Bearer " + valid, testNow, nil},
		{"both files: RS256", both, "Bearer " + mint(t, jwa.RS256(), k.rsa, "rsa-1", claims(nil)), testNow, nil},
		{"HS256 with a kid uses the secret", hs, "Bearer " + mint(t, jwa.HS256(), secret, "whatever", claims(nil)), testNow, nil},

		// The Authorization header.
		{"empty header", hs, "", testNow, errNoBearer},
		{"Bearer alone", hs, "Bearer", testNow, errNoBearer},
		{"Bearer and a space", hs, "Bearer ", testNow, errNoBearer},
		{"Bearer and blanks", hs, "Bearer \t ", testNow, errNoBearer},
		{"Basic", hs, "Basic " + valid, testNow, errNoBearer},
		{"no blank after the scheme", hs, "Bearer" + valid, testNow, errNoBearer},
		{"leading space", hs, " Bearer " + valid, testNow, errNoBearer},
		{"token alone", hs, valid, testNow, errNoBearer},
		{"lower-case scheme", hs, "bearer " + valid, testNow, nil},
		{"upper-case scheme", hs, "BEARER " + valid, testNow, nil},
		{"several blanks", hs, "Bearer \t  \t" + valid, testNow, nil},
		{"trailing space", hs, "Bearer " + valid + " ", testNow, errMalformed},
		{"trailing newline", hs, "Bearer " + valid + "\n", testNow, errMalformed},
		{"two tokens", hs, "Bearer " + valid + " " + valid, testNow, errMalformed},
		{"two parts", hs, "Bearer " + valid[:strings.LastIndexByte(valid, '.')], testNow, errMalformed},
		{"four parts", hs, "Bearer " + valid + ".x", testNow, errMalformed},
		{"empty signature", hs, "Bearer " + valid[:strings.LastIndexByte(valid, '.')+1], testNow, errMalformed},
		{"padding", hs, "Bearer " + valid + "=", testNow, errMalformed},
		{"JSON serialization", hs, `Bearer {"payload":"e30","signatures":[]}`, testNow, errMalformed},
		{"garbage parts", hs, "Bearer abc.def.ghi", testNow, errMalformed},
		{"too long", hs, "Bearer " + strings.Repeat("a", maxTokenLen) + ".b.c", testNow, errMalformed},

		// alg and key.
		{"alg none", both, "Bearer " + raw(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(nil), "c2ln"), testNow, errAlg},
		{"alg missing", both, "Bearer " + raw(t, map[string]any{"typ": "JWT"}, claims(nil), "c2ln"), testNow, errAlg},
		{"HS256 wrong secret", hs, "Bearer " + mint(t, jwa.HS256(), []byte(testSecret+"x"), "", claims(nil)), testNow, errSignature},
		{"RS256 wrong key under a known kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsa2, "rsa-1", claims(nil)), testNow, errSignature},
		{"RS256 wrong key without kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsa2, "", claims(nil)), testNow, errSignature},
		{"ES256 wrong key", ks, "Bearer " + mint(t, jwa.ES256(), k.ec2, "ec-1", claims(nil)), testNow, errSignature},
		{"EdDSA wrong key", ks, "Bearer " + mint(t, jwa.EdDSA(), k.ed2, "ed-1", claims(nil)), testNow, errSignature},
		{"unknown kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsa, "rsa-9", claims(nil)), testNow, errUnknownKid},
		{"ES256 token under an RSA kid", ks, "Bearer " + mint(t, jwa.ES256(), k.ec, "rsa-1", claims(nil)), testNow, errAlg},
		{"RS256 token under an EC kid", ks, "Bearer " + mint(t, jwa.RS256(), k.rsa, "ec-1", claims(nil)), testNow, errAlg},
		{"EdDSA token under an RSA kid", ks, "Bearer " + mint(t, jwa.EdDSA(), k.ed, "rsa-1", claims(nil)), testNow, errAlg},
		{"RS384 is not accepted", ks, "Bearer " + mint(t, jwa.RS384(), k.rsa, "rsa-1", claims(nil)), testNow, errAlg},
		{"PS256 is not accepted", ks, "Bearer " + mint(t, jwa.PS256(), k.rsa, "", claims(nil)), testNow, errAlg},
		{"HS512 is not accepted", hs, "Bearer " + mint(t, jwa.HS512(), secret, "", claims(nil)), testNow, errAlg},
		{"secret file only: RS256 with a kid", hs, "Bearer " + mint(t, jwa.RS256(), k.rsa, "rsa-1", claims(nil)), testNow, errAlg},
		{"JWKS only: HS256", ks, "Bearer " + valid, testNow, errAlg},
		{"ES256 header over an RS256 signature, no kid", ks, "Bearer " + lyingAlg(t, "ES256", "", k.rsaNoKid), testNow, errSignature},
		{"ES256 header over an RS256 signature, RSA kid", ks, "Bearer " + lyingAlg(t, "ES256", "rsa-1", k.rsa), testNow, errAlg},
		{"crit header", hs, "Bearer " + mintHeaders(t, jwa.HS256(), secret, map[string]any{"crit": []string{"x-ext"}, "x-ext": 1}, claims(nil)), testNow, errMalformed},

		// Time.
		{"expired beyond leeway", hs, "Bearer " + hs256(claims(map[string]any{"exp": at(-61 * time.Second)})), testNow, errExpired},
		{"expired exactly at leeway", hs, "Bearer " + hs256(claims(map[string]any{"exp": at(-60 * time.Second)})), testNow, errExpired},
		{"expired within leeway", hs, "Bearer " + hs256(claims(map[string]any{"exp": at(-59 * time.Second)})), testNow, nil},
		{"exp now, no leeway", noLeeway, "Bearer " + hs256(claims(map[string]any{"exp": at(0)})), testNow, errExpired},
		{"exp in a second, no leeway", noLeeway, "Bearer " + hs256(claims(map[string]any{"exp": at(time.Second)})), testNow, nil},
		{"leeway capped at 60s", capped, "Bearer " + hs256(claims(map[string]any{"exp": at(-61 * time.Second)})), testNow, errExpired},
		{"leeway capped at 60s, within", capped, "Bearer " + hs256(claims(map[string]any{"exp": at(-59 * time.Second)})), testNow, nil},
		{"nbf beyond leeway", hs, "Bearer " + hs256(claims(map[string]any{"nbf": at(61 * time.Second)})), testNow, errNotYetValid},
		{"nbf within leeway", hs, "Bearer " + hs256(claims(map[string]any{"nbf": at(60 * time.Second)})), testNow, nil},
		{"nbf past", hs, "Bearer " + hs256(claims(map[string]any{"nbf": at(-time.Hour)})), testNow, nil},
		{"nbf future, no leeway", noLeeway, "Bearer " + hs256(claims(map[string]any{"nbf": at(time.Second)})), testNow, errNotYetValid},
		{"iat in the future is ignored", hs, "Bearer " + hs256(claims(map[string]any{"iat": at(time.Hour)})), testNow, nil},
		{"missing exp", hs, "Bearer " + hs256(claims(map[string]any{"exp": nil})), testNow, errMissingExp},
		{"exp not a number", hs, "Bearer " + hs256(claims(map[string]any{"exp": "soon"})), testNow, errMalformed},

		// Claims.
		{"missing sub", hs, "Bearer " + hs256(claims(map[string]any{"sub": nil})), testNow, errMissingSub},
		{"empty sub", hs, "Bearer " + hs256(claims(map[string]any{"sub": ""})), testNow, errMissingSub},
		{"sub not a string", hs, "Bearer " + hs256(claims(map[string]any{"sub": 42})), testNow, errMalformed},
		{"claims not an object", hs, "Bearer " + mintPayload(t, secret, "[1,2]"), testNow, errMalformed},
		{"roles claim is ignored", hs, "Bearer " + hs256(claims(map[string]any{"role": "company-owner", "customer": "acme"})), testNow, nil},
		{"iss and aud ignored when not configured", hs, "Bearer " + hs256(claims(map[string]any{"iss": "https://other.example", "aud": "other"})), testNow, nil},
		{"iss and aud match", strict, "Bearer " + hs256(claims(map[string]any{"iss": "https://idp.example", "aud": "tenantgate"})), testNow, nil},
		{"aud list contains", strict, "Bearer " + hs256(claims(map[string]any{"iss": "https://idp.example", "aud": []string{"a", "tenantgate"}})), testNow, nil},
		{"iss mismatch", strict, "Bearer " + hs256(claims(map[string]any{"iss": "https://other.example", "aud": "tenantgate"})), testNow, errIssuer},
		{"iss missing", strict, "Bearer " + hs256(claims(map[string]any{"aud": "tenantgate"})), testNow, errIssuer},
		{"aud mismatch", strict, "Bearer " + hs256(claims(map[string]any{"iss": "https://idp.example", "aud": "other"})), testNow, errAudience},
		{"aud list without", strict, "Bearer " + hs256(claims(map[string]any{"iss": "https://idp.example", "aud": []string{"a", "b"}})), testNow, errAudience},
		{"aud missing", strict, "Bearer " + hs256(claims(map[string]any{"iss": "https://idp.example"})), testNow, errAudience},
	}
	for form, pub := range confusion {
		tok := "Bearer " + mint(t, jwa.HS256(), pub, "rsa-1", claims(nil))
		tests = append(tests,
			subjectCase{"key confusion, JWKS only: HS256 with the RSA public key as " + form, ks, tok, testNow, errAlg},
			subjectCase{"key confusion, both files: HS256 with the RSA public key as " + form, both, tok, testNow, errSignature},
		)
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second answer may come from the cache and must agree.
			for round := range 2 {
				sub, err := tt.v.Subject(tt.authz, tt.now)
				if tt.wantErr == nil {
					if err != nil || sub != testSub {
						t.Fatalf("round %d: Subject = %q, %v; want %q, nil", round, sub, err, testSub)
					}
					continue
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("round %d: Subject = %q, %v; want error %q", round, sub, err, tt.wantErr)
				}
				if sub != "" {
					t.Fatalf("round %d: Subject returned %q with an error", round, sub)
				}
			}
		})
	}
}

// lyingAlg returns a token whose header claims alg but whose signature is
// RS256 by key: only a verifier that lets the key, not the header, choose the
// algorithm would accept it.
func lyingAlg(t *testing.T, alg, kid string, key *rsa.PrivateKey) string {
	t.Helper()
	header := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	unsigned := raw(t, header, claims(nil), "")
	digest := sha256.Sum256([]byte(strings.TrimSuffix(unsigned, ".")))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	tok := unsigned + base64.RawURLEncoding.EncodeToString(sig)
	// A verifier that takes the algorithm from the key, not the header (as
	// jws.WithKey does), accepts this token; check it, or the cases built on
	// it would prove nothing.
	if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.RS256(), &key.PublicKey)); err != nil {
		t.Fatalf("the RS256 signature does not verify: %v", err)
	}
	return tok
}

// mintPayload signs an arbitrary payload with HS256, for payloads that are
// not a claims object.
func mintPayload(t *testing.T, secret []byte, payload string) string {
	t.Helper()
	signed, err := jws.Sign([]byte(payload), jws.WithKey(jwa.HS256(), secret))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func TestSecretFileNewline(t *testing.T) {
	tests := []struct {
		name    string
		content string
		secret  string // the secret tokens must be signed with
	}{
		{"no newline", testSecret, testSecret},
		{"one LF stripped", testSecret + "\n", testSecret},
		{"one CRLF stripped", testSecret + "\r\n", testSecret},
		{"second LF kept", testSecret + "\n\n", testSecret + "\n"},
		{"LF after CRLF kept", testSecret + "\r\n\n", testSecret + "\r\n"},
		{"lone CR kept", testSecret + "\r", testSecret + "\r"},
		{"leading newline kept", "\n" + testSecret, "\n" + testSecret},
		{"spaces kept", testSecret + " \n", testSecret + " "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "secret", []byte(tt.content))
			v := load(t, Config{HS256SecretFile: file})
			good := mint(t, jwa.HS256(), []byte(tt.secret), "", claims(nil))
			if sub, err := v.Subject("Bearer "+good, testNow); err != nil || sub != testSub {
				t.Fatalf("token signed with %q: Subject = %q, %v", tt.secret, sub, err)
			}
			if tt.content != tt.secret {
				bad := mint(t, jwa.HS256(), []byte(tt.content), "", claims(nil))
				if _, err := v.Subject("Bearer "+bad, testNow); !errors.Is(err, errSignature) {
					t.Fatalf("token signed with the raw file content: err = %v, want %v", err, errSignature)
				}
			}
			// SignHS256 reads the file by the same rule.
			tok, err := SignHS256(file, testSub, "", "", time.Minute, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.HS256(), []byte(tt.secret))); err != nil {
				t.Fatalf("SignHS256 token does not verify with %q: %v", tt.secret, err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	k := keys(t)
	secretFile := writeFile(t, "secret", []byte(testSecret))
	missing := t.TempDir() + "/missing"
	priv := jwkOf(t, k.rsa, "rsa-priv", "")
	if err := priv.Set("key_ops", []string{"sign"}); err != nil {
		t.Fatal(err)
	}
	encKey := jwkOf(t, &k.rsa.PublicKey, "rsa-enc", "")
	if err := encKey.Set("use", "enc"); err != nil {
		t.Fatal(err)
	}
	p384 := mustECKey(t, "P-384")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWKS := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"small","n":%q,"e":"AQAB"}]}`,
		base64.RawURLEncoding.EncodeToString(small.N.Bytes()))

	tests := []struct {
		name      string
		cfg       Config
		aboutFile bool     // the error must name the file: the JWKS file if set, else the secret file
		want      []string // fragments of the error
	}{
		{"no file", Config{}, false, []string{"no JWT key file"}},
		{"negative leeway", Config{HS256SecretFile: secretFile, Leeway: -time.Second}, false, []string{"leeway", "negative"}},
		{"missing secret file", Config{HS256SecretFile: missing}, true, []string{missing, "no such file"}},
		{"empty secret file", Config{HS256SecretFile: writeFile(t, "s", nil)}, true, []string{"secret is empty"}},
		{"newline-only secret", Config{HS256SecretFile: writeFile(t, "s", []byte("\r\n"))}, true, []string{"secret is empty"}},
		{"short secret", Config{HS256SecretFile: writeFile(t, "s", []byte("hunter2\n"))}, true, []string{"7 bytes", "at least 32"}},
		{"missing JWKS file", Config{JWKSFile: missing}, true, []string{missing, "no such file"}},
		{"bad JWKS JSON", Config{JWKSFile: writeFile(t, "j", []byte(`{"keys": [`))}, true, nil},
		{"not JSON", Config{JWKSFile: writeFile(t, "j", []byte("-----BEGIN PUBLIC KEY-----"))}, true, nil},
		{"no keys", Config{JWKSFile: writeFile(t, "j", []byte(`{"keys": []}`))}, true, []string{"no keys"}},
		{"oct key", Config{JWKSFile: writeFile(t, "j", []byte(`{"keys":[{"kty":"oct","kid":"o","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`))}, true, []string{`key #1 (kid "o")`, "not supported"}},
		{"RSA under 2048 bits", Config{JWKSFile: writeFile(t, "j", []byte(smallJWKS))}, true, []string{"1024 bits"}},
		{"EC P-384", Config{JWKSFile: writeJWKS(t, jwkOf(t, p384, "ec-384", ""))}, true, []string{`kid "ec-384"`, "P-384"}},
		{"RSA key declaring ES256", Config{JWKSFile: writeJWKS(t, jwkOf(t, &k.rsa.PublicKey, "r", "ES256"))}, true, []string{`"alg" "ES256"`, "RS256"}},
		{"RSA key declaring PS256", Config{JWKSFile: writeJWKS(t, jwkOf(t, &k.rsa.PublicKey, "r", "PS256"))}, true, []string{`"alg" "PS256"`}},
		{"EC key declaring RS256", Config{JWKSFile: writeJWKS(t, jwkOf(t, &k.ec.PublicKey, "e", "RS256"))}, true, []string{`"alg" "RS256"`, "ES256"}},
		{"Ed25519 key declaring ES256", Config{JWKSFile: writeJWKS(t, jwkOf(t, k.ed.Public(), "d", "ES256"))}, true, []string{`"alg" "ES256"`, "EdDSA"}},
		{"encryption key", Config{JWKSFile: writeJWKS(t, jwkOf(t, &k.ec.PublicKey, "ok", ""), encKey)}, true, []string{`key #2 (kid "rsa-enc")`, `"use" is "enc"`}},
		{"key_ops without verify", Config{JWKSFile: writeJWKS(t, priv)}, true, []string{`"key_ops"`}},
		{"duplicate kid", Config{JWKSFile: writeJWKS(t, jwkOf(t, &k.rsa.PublicKey, "dup", ""), jwkOf(t, &k.ec.PublicKey, "dup", ""))}, true, []string{"duplicate", "dup"}},
		{"good secret, bad JWKS", Config{HS256SecretFile: secretFile, JWKSFile: writeFile(t, "j", []byte(`{}`))}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Load(tt.cfg)
			if err == nil {
				t.Fatalf("Load(%+v) = %v, nil; want an error", tt.cfg, v)
			}
			msg := err.Error()
			if tt.aboutFile {
				file := tt.cfg.JWKSFile
				if file == "" {
					file = tt.cfg.HS256SecretFile
				}
				if !strings.Contains(msg, file) {
					t.Errorf("error %q does not name the file %s", msg, file)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadAcceptsPrivateJWKAndBareKey(t *testing.T) {
	k := keys(t)
	tests := []struct {
		name string
		file string
		tok  string
	}{
		{"private RSA JWK verifies with its public half", writeJWKS(t, jwkOf(t, k.rsa, "rsa-1", "RS256")),
			mint(t, jwa.RS256(), k.rsa, "rsa-1", claims(nil))},
		{"a bare JWK, not a set", mustJSONFile(t, jwkOf(t, k.ed.Public(), "ed-1", "")),
			mint(t, jwa.EdDSA(), k.ed, "ed-1", claims(nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := load(t, Config{JWKSFile: tt.file})
			if sub, err := v.Subject("Bearer "+tt.tok, testNow); err != nil || sub != testSub {
				t.Fatalf("Subject = %q, %v", sub, err)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	secretFile := writeFile(t, "secret", []byte(testSecret))
	jwksFile := standardJWKS(t)
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"secret", Config{HS256SecretFile: secretFile}, []string{secretFile}},
		{"jwks", Config{JWKSFile: jwksFile}, []string{jwksFile}},
		{"both", Config{HS256SecretFile: secretFile, JWKSFile: jwksFile}, []string{secretFile, jwksFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := load(t, tt.cfg)
			got := v.Files()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Files() = %q, want %q", got, tt.want)
			}
			got[0] = "changed"
			if v.Files()[0] != tt.want[0] {
				t.Fatal("Files() returned the verifier's own slice")
			}
		})
	}
}

func TestSignHS256(t *testing.T) {
	secretFile := writeFile(t, "secret", []byte(testSecret+"\n"))
	v := load(t, Config{HS256SecretFile: secretFile, Issuer: "https://idp.example", Audience: "tenantgate", Leeway: time.Minute})
	plain := load(t, Config{HS256SecretFile: secretFile, Leeway: time.Minute})

	tests := []struct {
		name      string
		file      string
		sub       string
		iss, aud  string
		ttl       time.Duration
		verifier  *Verifier
		wantErr   bool
		expiredAt time.Time // when the token must no longer be accepted
	}{
		{"with iss and aud", secretFile, "bob@contoso.example", "https://idp.example", "tenantgate", time.Hour, v, false, testNow.Add(time.Hour + time.Minute)},
		{"without iss and aud", secretFile, "bob@contoso.example", "", "", 10 * time.Minute, plain, false, testNow.Add(11 * time.Minute)},
		{"empty subject", secretFile, "", "", "", time.Hour, nil, true, time.Time{}},
		{"zero ttl", secretFile, "bob", "", "", 0, nil, true, time.Time{}},
		{"missing secret file", t.TempDir() + "/none", "bob", "", "", time.Hour, nil, true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := SignHS256(tt.file, tt.sub, tt.iss, tt.aud, tt.ttl, testNow)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("SignHS256 = %q, nil; want an error", tok)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sub, err := tt.verifier.Subject("Bearer "+tok, testNow); err != nil || sub != tt.sub {
				t.Fatalf("Subject = %q, %v; want %q", sub, err, tt.sub)
			}
			if _, err := tt.verifier.Subject("Bearer "+tok, tt.expiredAt); !errors.Is(err, errExpired) {
				t.Fatalf("at %s: err = %v, want %v", tt.expiredAt, err, errExpired)
			}
		})
	}
	// A token without iss/aud is refused where they are configured.
	tok, err := SignHS256(secretFile, "bob", "", "", time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Subject("Bearer "+tok, testNow); !errors.Is(err, errIssuer) {
		t.Fatalf("token without iss: err = %v, want %v", err, errIssuer)
	}
}

func mustJSONFile(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "key.json", b)
}

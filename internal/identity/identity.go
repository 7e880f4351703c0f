// Package identity verifies the bearer JWT of a request (tenantgate help identity) and
// returns its subject, the user id. Tokens are signed with HS256 (a secret
// file) or with RS256, ES256 or EdDSA keys from a JWKS file. Roles and every
// other claim are ignored: what a user may do comes from the tenant data.
//
// A Verifier is immutable apart from its cache of verified tokens; a reload
// of the key files builds a new Verifier, which starts with an empty cache.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// maxLeeway is the most clock leeway a Verifier applies (tenantgate help identity).
const maxLeeway = 60 * time.Second

// maxTokenLen bounds the work an unauthenticated client can ask for. Real
// tokens are a few KiB at most, and proxies cap header sizes anyway.
const maxTokenLen = 16 << 10

// Why a token is refused. Every one of them means `unauthenticated` to the
// caller; they exist for logs and for tests that must fail for the right
// reason. The ones a cache hit can return are preallocated, so a hit does not
// allocate even when it refuses.
var (
	errNoBearer     = errors.New(`authorization is not "Bearer <token>"`)
	errMalformed    = errors.New("malformed token")
	errAlg          = errors.New("token alg not accepted")
	errUnknownKid   = errors.New("token kid is not in the JWKS")
	errSignature    = errors.New("token signature does not verify")
	errMissingExp   = errors.New("token has no exp")
	errExpired      = errors.New("token expired")
	errNotYetValid  = errors.New("token not valid yet (nbf)")
	errIssuer       = errors.New("token iss does not match")
	errAudience     = errors.New("token aud does not match")
	errMissingSub   = errors.New("token has no sub")
	errTokenTooLong = fmt.Errorf("%w: longer than %d bytes", errMalformed, maxTokenLen)
)

// Config names the key files and the claim checks of a Verifier.
type Config struct {
	HS256SecretFile string        // a secret file: HS256 only; one trailing "\n" or "\r\n" is not part of the secret
	JWKSFile        string        // a JWKS file: RS256 / ES256 / EdDSA keys
	Issuer          string        // checked when non-empty
	Audience        string        // checked when non-empty
	Leeway          time.Duration // clock leeway for exp and nbf; capped at 60s
	// Remote is a key set fetched from a URL (--jwks-url, --oidc-issuer),
	// shared by the verifiers of every snapshot: its refreshes take effect
	// at once, without a reload.
	Remote *RemoteKeys
}

// Verifier checks bearer tokens against the keys it was loaded with. It is
// safe for concurrent use.
type Verifier struct {
	files    []string
	secret   []byte              // nil without a secret file
	keys     []jwksKey           // the JWKS keys, in file order
	byKid    map[string]*jwksKey // the JWKS keys that have a kid
	issuer   string
	audience string
	leeway   time.Duration
	remote   *RemoteKeys // nil without a URL key set
	cache    *tokenCache
}

// Load reads the key files named by cfg. At least one of HS256SecretFile and
// JWKSFile is required; both may be set. Errors name the file and what is
// wrong with it.
func Load(cfg Config) (*Verifier, error) {
	var files []*KeyFile
	if cfg.HS256SecretFile != "" {
		kf, err := ReadSecretFile(cfg.HS256SecretFile)
		if err != nil {
			return nil, err
		}
		files = append(files, kf)
	}
	if cfg.JWKSFile != "" {
		kf, err := ReadJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		files = append(files, kf)
	}
	return NewVerifier(cfg, files...)
}

// NewVerifier builds a verifier from key files already read, with cfg's
// claim checks (its file names are not read again). The engine reads each
// key file on its own, so that a broken one keeps its last good version
// without holding back a rotation of the other. nil files are skipped; at
// least one must remain.
func NewVerifier(cfg Config, files ...*KeyFile) (*Verifier, error) {
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("JWT leeway %s is negative", cfg.Leeway)
	}
	v := &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		leeway:   min(cfg.Leeway, maxLeeway),
		remote:   cfg.Remote,
		cache:    newTokenCache(),
	}
	for _, kf := range files {
		switch {
		case kf == nil:
			continue
		case kf.secret != nil:
			if v.secret != nil {
				return nil, fmt.Errorf("HS256 secret files %s and %s: only one is used", v.files[0], kf.path)
			}
			v.secret = kf.secret
		default:
			if v.keys != nil {
				return nil, fmt.Errorf("JWKS file %s: only one JWKS file is used", kf.path)
			}
			v.keys = kf.jwks
			v.byKid = make(map[string]*jwksKey, len(v.keys))
			for i := range v.keys {
				if k := &v.keys[i]; k.kid != "" {
					v.byKid[k.kid] = k
				}
			}
		}
		v.files = append(v.files, kf.path)
	}
	if len(v.files) == 0 && v.remote == nil {
		return nil, errors.New("no JWT key file: set an HS256 secret file, a JWKS file or both (or a JWKS URL or an OIDC issuer)")
	}
	return v, nil
}

// Files returns the key files this verifier was loaded from, for the server
// to watch for hot reload.
func (v *Verifier) Files() []string {
	return slices.Clone(v.files)
}

// Subject verifies an Authorization header value ("Bearer <jwt>": the scheme
// in any case, then one or more spaces or tabs, then the token and nothing
// else) at time now, and returns the token's sub claim. Any error means the
// request is unauthenticated; the error says why, for the logs.
//
// Subject runs on every request: a token verified before is answered from the
// cache, which still checks exp and nbf against now.
func (v *Verifier) Subject(authorization string, now time.Time) (string, error) {
	token, err := bearerToken(authorization)
	if err != nil {
		return "", err
	}
	// An entry verified with a URL key set other than the one in force is
	// verified again: its key may be gone.
	if e, ok := v.cache.get(token); ok && (e.gen == 0 || e.gen == v.remote.gen()) {
		if err := e.check(now); err != nil {
			if errors.Is(err, errExpired) {
				v.cache.remove(token)
			}
			return "", err
		}
		return e.sub, nil
	}
	e, err := v.verify(token)
	if err != nil {
		return "", err
	}
	if err := e.check(now); err != nil {
		return "", err
	}
	v.cache.put(token, e)
	return e.sub, nil
}

// bearerToken returns the token of a bearer Authorization value. It only
// slices the header: the token's shape is checked before verification, which
// a cached token has passed already.
func bearerToken(h string) (string, error) {
	const scheme = "Bearer"
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", errNoBearer
	}
	rest := h[len(scheme):]
	i := 0
	for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
		i++
	}
	if i == 0 || i == len(rest) {
		return "", errNoBearer
	}
	return rest[i:], nil
}

// compactShape reports whether token looks like a compact JWS: three
// non-empty base64url parts. This is a cheap filter in front of jwx, not the
// parser; it turns away the JSON serialization, whitespace and alg-none
// tokens with an empty signature before any decoding work.
func compactShape(token string) bool {
	dots, partLen := 0, 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			if partLen == 0 {
				return false
			}
			dots++
			partLen = 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			partLen++
		default:
			return false
		}
	}
	return dots == 2 && partLen > 0
}

// verify checks token's signature and claims (everything but the time) and
// returns what the cache keeps of it.
func (v *Verifier) verify(token string) (entry, error) {
	if len(token) > maxTokenLen {
		return entry{}, errTokenTooLong
	}
	if !compactShape(token) {
		return entry{}, fmt.Errorf("%w: not three base64url parts", errMalformed)
	}
	picker := keyPicker{v: v}
	payload, err := jws.Verify([]byte(token),
		jws.WithCompact(),
		// No crit extension is understood, so a token that lists one is
		// refused (RFC 7515 section 4.1.11), and so is b64=false.
		jws.WithCritValidation(true),
		jws.WithKeyProvider(&picker),
	)
	switch {
	case picker.err != nil:
		return entry{}, picker.err
	case err != nil && !picker.called:
		return entry{}, fmt.Errorf("%w: %w", errMalformed, err)
	case err != nil:
		return entry{}, fmt.Errorf("%w: %w", errSignature, err)
	}
	e, err := v.claims(payload)
	e.gen = picker.gen
	return e, err
}

// claims checks the claims of a verified payload, all but the time window,
// which the caller checks against now (exp and nbf are kept for the cache).
func (v *Verifier) claims(payload []byte) (entry, error) {
	// Decoding into a jwt.Token directly (not jwt.Parse) because the payload
	// is verified already and must be a claims object, not another JWS.
	tok := jwt.New()
	if err := json.Unmarshal(payload, tok); err != nil {
		return entry{}, fmt.Errorf("%w: claims: %w", errMalformed, err)
	}
	exp, ok := tok.Expiration()
	if !ok {
		return entry{}, errMissingExp
	}
	e := entry{validity: validity{until: exp.Add(v.leeway)}}
	if nbf, ok := tok.NotBefore(); ok {
		e.from, e.hasFrom = nbf.Add(-v.leeway), true
	}
	if v.issuer != "" {
		if iss, _ := tok.Issuer(); iss != v.issuer {
			return entry{}, fmt.Errorf("%w: got %q, want %q", errIssuer, iss, v.issuer)
		}
	}
	if v.audience != "" {
		if aud, _ := tok.Audience(); !slices.Contains(aud, v.audience) {
			return entry{}, fmt.Errorf("%w: got %q, want %q", errAudience, aud, v.audience)
		}
	}
	sub, _ := tok.Subject()
	if sub == "" {
		return entry{}, errMissingSub
	}
	e.sub = sub
	return e, nil
}

// keyPicker hands jws.Verify the keys a token may be verified with. jws
// verifies with the alg given here, not the header's, so every key goes in
// with the one alg it was bound to at load, and only when that is the
// token's alg.
type keyPicker struct {
	v      *Verifier
	called bool   // the token parsed far enough to ask for keys
	err    error  // why no key fits, when none does
	gen    uint64 // the URL key set generation a key was offered from; 0: none
}

func (p *keyPicker) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	p.called = true
	p.err = p.pickKeys(sink, sig.ProtectedHeaders())
	return p.err
}

func (p *keyPicker) pickKeys(sink jws.KeySink, h jws.Headers) error {
	v := p.v
	alg, ok := h.Algorithm()
	if !ok {
		return fmt.Errorf("%w: no alg", errAlg)
	}
	switch alg.String() {
	case "HS256":
		// Only the secret file is an HMAC key. A JWKS key is never used as
		// one, which is what defeats HS256 signed with a public key.
		if v.secret == nil {
			return fmt.Errorf("%w: HS256 needs an HS256 secret file, none is configured", errAlg)
		}
		sink.Key(jwa.HS256(), v.secret)
		return nil
	case "RS256", "ES256", "EdDSA":
		if v.keys == nil && v.remote == nil {
			return fmt.Errorf("%w: %s needs a JWKS file or URL, none is configured", errAlg, alg)
		}
	default:
		return fmt.Errorf("%w: %q is not one of HS256, RS256, ES256, EdDSA", errAlg, alg)
	}
	if kid, _ := h.KeyID(); kid != "" {
		k, ok := v.byKid[kid]
		if !ok && v.remote != nil {
			// The file's keys first, then the URL's; a kid in neither
			// forces a refresh of the URL's (rate-limited): the
			// provider may have published the key since the last one.
			ks := v.remote.current()
			if k, ok = lookupKid(ks, kid); !ok {
				ks = v.remote.refreshForKid()
				k, ok = lookupKid(ks, kid)
			}
			if ok {
				p.gen = ks.gen
			}
		}
		if !ok {
			return fmt.Errorf("%w: %q", errUnknownKid, kid)
		}
		if k.alg != alg {
			return fmt.Errorf("%w: %s does not fit key %q (%s)", errAlg, alg, kid, k.alg)
		}
		sink.Key(k.alg, k.key)
		return nil
	}
	n := offer(sink, v.keys, alg)
	if v.remote != nil {
		if ks := v.remote.current(); ks != nil {
			if m := offer(sink, ks.keys, alg); m > 0 {
				n += m
				p.gen = ks.gen
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: no JWKS key fits %s", errAlg, alg)
	}
	return nil
}

// offer gives sink every key of keys bound to alg and returns how many.
func offer(sink jws.KeySink, keys []jwksKey, alg jwa.SignatureAlgorithm) int {
	n := 0
	for i := range keys {
		if k := &keys[i]; k.alg == alg {
			sink.Key(k.alg, k.key)
			n++
		}
	}
	return n
}

func lookupKid(ks *keySet, kid string) (*jwksKey, bool) {
	if ks == nil {
		return nil, false
	}
	k, ok := ks.byKid[kid]
	return k, ok
}

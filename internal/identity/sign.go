package identity

import (
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// SignHS256 mints a development token (`tenantgate token --user ID`): HS256
// with the secret from secretFile (read by the same rules as Load), claims
// sub, iat = now, exp = now+ttl, and iss and aud when non-empty.
func SignHS256(secretFile, subject, issuer, audience string, ttl time.Duration, now time.Time) (string, error) {
	if subject == "" {
		return "", errors.New("sign token: the subject is empty")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("sign token: ttl %s is not positive", ttl)
	}
	secret, err := readSecret(secretFile)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	b := jwt.NewBuilder().Subject(subject).IssuedAt(now).Expiration(now.Add(ttl))
	if issuer != "" {
		b = b.Issuer(issuer)
	}
	if audience != "" {
		b = b.Audience([]string{audience})
	}
	tok, err := b.Build()
	if err != nil {
		return "", fmt.Errorf("sign token for %q: %w", subject, err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), secret))
	if err != nil {
		return "", fmt.Errorf("sign token for %q: %w", subject, err)
	}
	return string(signed), nil
}

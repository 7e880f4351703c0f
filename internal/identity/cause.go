package identity

import "errors"

// Cause names why a token was refused, in a word or two that is safe to log
// and to count (it never holds the token or a claim's value): "expired",
// "bad signature", "wrong audience", ... "other" for a cause without a name.
// No token at all ("no bearer") is a cause too.
func Cause(err error) string {
	for _, c := range causes {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "other"
}

// BearerSent reports whether an Authorization value carries a bearer token
// (scheme case-insensitive, a non-empty token): RFC 6750 answers such a
// request's 401 with error="invalid_token", and one without credentials
// with a bare challenge.
func BearerSent(authorization string) bool {
	_, err := bearerToken(authorization)
	return err == nil
}

var causes = []struct {
	err  error
	name string
}{
	{errNoBearer, "no bearer token"},
	{errMalformed, "malformed"},
	{errAlg, "alg not accepted"},
	{errUnknownKid, "unknown kid"},
	{errSignature, "bad signature"},
	{errMissingExp, "no exp"},
	{errExpired, "expired"},
	{errNotYetValid, "not yet valid"},
	{errIssuer, "wrong issuer"},
	{errAudience, "wrong audience"},
	{errMissingSub, "no sub"},
}

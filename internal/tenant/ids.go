package tenant

// Id rules (tenantgate help data). Every id must be safe in a header value and in a
// comma-separated header list, which is why `,` and spaces never appear.
const (
	maxID     = 128 // customer, location and computer ids
	maxUserID = 256 // user ids (JWT subjects)
)

// idByte marks the bytes allowed in customer, location and computer ids:
// A-Z a-z 0-9 . _ ~ @ + -
var idByte = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._~@+-" {
		t[c] = true
	}
	return t
}()

// ValidID reports whether s is a valid customer, location or computer id:
// 1-128 bytes from A-Z a-z 0-9 . _ ~ @ + -, not starting with '.' (so no id
// is "." or "..", and none looks like a hidden file).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxID || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte[s[i]] {
			return false
		}
	}
	return true
}

// ValidUserID reports whether s is a valid user id (a JWT subject): 1-256
// visible ASCII bytes (0x21-0x7E) other than ','.
func ValidUserID(s string) bool {
	if len(s) == 0 || len(s) > maxUserID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// Rank returns a customer type's rank, distributor 1 ... site 5, or 0 for an
// unknown type. A child's rank is strictly greater than its parent's.
func Rank(typ string) int {
	switch typ {
	case TypeDistributor:
		return 1
	case TypeSubDistributor:
		return 2
	case TypeReseller:
		return 3
	case TypeEndCustomer:
		return 4
	case TypeSite:
		return 5
	}
	return 0
}

// canonicalRole returns the package's constant for a role, or "" for an
// unknown one. Keeping the constant rather than the parser's copy means
// 200,000 users share five strings.
func canonicalRole(r string) string {
	for _, c := range Roles {
		if r == c {
			return c
		}
	}
	return ""
}

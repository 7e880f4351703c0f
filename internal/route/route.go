package route

import "github.com/tenantgate/tenantgate/internal/tenant"

// Route is a request path matched against the grammar of tenantgate help requests:
//
//	/api/v1/customers/{customer}[/locations/{location}][/computers/{computer}]/{resource}[/{id}[/...]]
//
// Strings are the decoded segments; segments after {id} are allowed and not
// reported. The {id} of the locations resource is a location qualifier too
// (see AppendLocations).
type Route struct {
	Customer string
	Resource string
	Location string // "" when no locations/{l} qualifier
	Computer string // "" when no computers/{c} qualifier
	ID       string // "" when no {id}

	HasLocation, HasComputer, HasID bool
}

// The fixed prefix /api/v1/customers/{customer} is four segments.
const prefixLen = 4

// Parse matches decoded segments (from Segments) against the grammar.
// isResource reports whether a name is in the resource catalog; the catalog
// belongs to the policy, so it is a parameter. ok=false means no_route.
//
// locations/{l} and computers/{c} are qualifiers only when a catalog resource
// follows them (for locations/{l}: directly, or after a computers/{c}
// qualifier). Otherwise "locations" is read as the resource itself, with {l}
// as its id, and "computers", which is no catalog resource, has no route.
func Parse(segs []string, isResource func(string) bool) (Route, bool) {
	n := len(segs)
	if isResource == nil || n <= prefixLen ||
		segs[0] != "api" || segs[1] != "v1" || segs[2] != "customers" {
		return Route{}, false
	}
	// Segments never yields an empty segment, but Parse may be handed
	// segments from elsewhere: an empty name matches no tenant, so refuse it
	// rather than let it reach the policy.
	for _, s := range segs[prefixLen-1:] {
		if s == "" {
			return Route{}, false
		}
	}

	r := Route{Customer: segs[3]}
	i := prefixLen
	if segs[i] == "locations" && i+2 < n &&
		(isResource(segs[i+2]) || isComputerQualifier(segs, i+2, isResource)) {
		r.Location, r.HasLocation = segs[i+1], true
		i += 2
	}
	if isComputerQualifier(segs, i, isResource) {
		r.Computer, r.HasComputer = segs[i+1], true
		i += 2
	}
	if !isResource(segs[i]) {
		return Route{}, false
	}
	r.Resource = segs[i]
	if i+1 < n {
		r.ID, r.HasID = segs[i+1], true
		// A users/{id} that no user could have has no route (tenantgate help
		// requests): it could only name a user to an upstream that reads ids
		// differently from us (trims a space, folds a non-ASCII letter).
		if r.Resource == "users" && !tenant.ValidUserID(r.ID) {
			return Route{}, false
		}
	}
	return r, true
}

// AppendLocations appends the route's location qualifiers to dst, in path
// order, and returns the result: the locations/{l} qualifier, then the {id}
// of the locations resource, which names a location too (tenantgate help requests:
// ".../locations/hq/locations/branch-1" has two, hq and branch-1). There are
// at most two, so a caller's [2]string buffer means no allocation.
func (r *Route) AppendLocations(dst []string) []string {
	if r.HasLocation {
		dst = append(dst, r.Location)
	}
	if r.HasID && r.Resource == "locations" {
		dst = append(dst, r.ID)
	}
	return dst
}

// isComputerQualifier reports whether segs[i:] starts with computers/{c}
// followed by a catalog resource.
func isComputerQualifier(segs []string, i int, isResource func(string) bool) bool {
	return i+2 < len(segs) && segs[i] == "computers" && isResource(segs[i+2])
}

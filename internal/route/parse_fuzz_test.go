package route

import (
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// refParse is the grammar of tenantgate help requests written as its four shapes,
// tried most specific first, independently of Parse's index walk:
//
//	{customer}/locations/{l}/computers/{c}/{resource}[/{id}...]
//	{customer}/locations/{l}/{resource}[/{id}...]
//	{customer}/computers/{c}/{resource}[/{id}...]
//	{customer}/{resource}[/{id}...]
func refParse(segs []string) (Route, bool) {
	if len(segs) < 5 || segs[0] != "api" || segs[1] != "v1" || segs[2] != "customers" {
		return Route{}, false
	}
	for _, s := range segs[3:] {
		if s == "" {
			return Route{}, false
		}
	}
	at := func(i int) string {
		if i < len(segs) {
			return segs[i]
		}
		return ""
	}
	rest := segs[4:]
	var r Route
	var res int // index in rest of the resource
	switch {
	case len(rest) >= 5 && rest[0] == "locations" && rest[2] == "computers" && isResource(rest[4]):
		r.Location, r.HasLocation, r.Computer, r.HasComputer, res = rest[1], true, rest[3], true, 4
	case len(rest) >= 3 && rest[0] == "locations" && isResource(rest[2]):
		r.Location, r.HasLocation, res = rest[1], true, 2
	case len(rest) >= 3 && rest[0] == "computers" && isResource(rest[2]):
		r.Computer, r.HasComputer, res = rest[1], true, 2
	case isResource(rest[0]):
		res = 0
	default:
		return Route{}, false
	}
	r.Customer, r.Resource = segs[3], rest[res]
	if id := at(4 + res + 1); id != "" {
		r.ID, r.HasID = id, true
	}
	if r.Resource == "users" && r.HasID && !tenant.ValidUserID(r.ID) {
		return Route{}, false
	}
	return r, true
}

// FuzzParse checks Parse against refParse on any segments: the segments of
// a path that passes the checks, and raw slash-split strings (empty
// segments and all), which Parse must refuse or match the same way.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"/api/v1/customers/c1/users",
		"/api/v1/customers/c1/users/u1/extra/more",
		"/api/v1/customers/c1/locations",
		"/api/v1/customers/c1/locations/hq",
		"/api/v1/customers/c1/locations/hq/users/x",
		"/api/v1/customers/c1/locations/hq/computers/pc-1/agent-jobs",
		"/api/v1/customers/c1/locations/hq/computers/pc-1",
		"/api/v1/customers/c1/computers/pc-1/protected-computers/pc-2",
		"/api/v1/customers/c1/computers/pc-1",
		"/api/v1/customers/c1/locations/locations/locations",
		"/api/v1/customers/c1/computers/computers/users",
		"/api/v1/customers/locations/locations/hq/users",
		"/api/v1/customers//users",
		"/api/v1/customers/c1/users/",
		"/api/v2/customers/c1/users",
		"/api/v1/customers/c%401/users/alice%40contoso.example",
		"/api/v1/customers/c1/locations/hq/locations/branch-1",
		"/api/v1/customers/c1/users/alice%40contoso.example%20",
		"/api/v1/customers/c1/users/%C2%A0",
		"/api/v1/customers/c1/users/a,b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		inputs := [][]string{strings.Split(strings.TrimPrefix(raw, "/"), "/")}
		if segs, err := Segments(raw, nil); err == nil {
			inputs = append(inputs, segs)
		}
		for _, segs := range inputs {
			got, ok := Parse(segs, isResource)
			want, wantOK := refParse(segs)
			if ok != wantOK || got != want {
				t.Fatalf("Parse(%q) = %+v, %t; the grammar says %+v, %t", segs, got, ok, want, wantOK)
			}
			if !ok {
				continue
			}
			// Every field is one whole segment, never empty.
			for _, f := range []string{got.Customer, got.Resource, got.Location, got.Computer, got.ID} {
				if strings.Contains(f, "/") {
					t.Fatalf("Parse(%q): field %q holds a separator", segs, f)
				}
			}
			if got.HasLocation != (got.Location != "") || got.HasComputer != (got.Computer != "") || got.HasID != (got.ID != "") {
				t.Fatalf("Parse(%q) = %+v: a Has flag disagrees with its field", segs, got)
			}
			// The location qualifiers: locations/{l}, then a locations {id}.
			var wantLocs []string
			if got.HasLocation {
				wantLocs = append(wantLocs, got.Location)
			}
			if got.Resource == "locations" && got.HasID {
				wantLocs = append(wantLocs, got.ID)
			}
			if locs := got.AppendLocations(nil); strings.Join(locs, "/") != strings.Join(wantLocs, "/") || len(locs) != len(wantLocs) {
				t.Fatalf("Parse(%q): location qualifiers %q, want %q", segs, locs, wantLocs)
			}
		}
	})
}

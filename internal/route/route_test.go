package route

import (
	"slices"
	"strings"
	"testing"
)

// catalog is the default policy's resource catalog (tenantgate help requests).
var catalog = map[string]struct{}{
	"company-info": {}, "locations": {}, "alarm-settings": {}, "users": {},
	"customers": {}, "backup-policies": {}, "profiles": {}, "retention-policies": {},
	"quick-installation": {}, "passphrases": {}, "downloads": {}, "vbr-jobs": {},
	"agent-jobs": {}, "failover-plans": {}, "discovery-rules": {},
	"managed-computers": {}, "summary": {}, "active-alarms": {},
	"protected-computers": {}, "invoices": {}, "backup-reports": {},
	"historical-charts": {}, "scheduled-reports": {},
}

func isResource(s string) bool { _, ok := catalog[s]; return ok }

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		want   Route
		wantOK bool
	}{
		// Plain resource.
		{name: "collection", path: "/api/v1/customers/c1/users",
			want: Route{Customer: "c1", Resource: "users"}, wantOK: true},
		{name: "collection trailing slash", path: "/api/v1/customers/c1/users/",
			want: Route{Customer: "c1", Resource: "users"}, wantOK: true},
		{name: "item", path: "/api/v1/customers/c1/users/u1",
			want: Route{Customer: "c1", Resource: "users", ID: "u1", HasID: true}, wantOK: true},
		{name: "item decoded", path: "/api/v1/customers/c1/users/alice%40contoso.example",
			want: Route{Customer: "c1", Resource: "users", ID: "alice@contoso.example", HasID: true}, wantOK: true},
		{name: "item with extra segments", path: "/api/v1/customers/c1/vbr-jobs/j1/sessions/s1",
			want: Route{Customer: "c1", Resource: "vbr-jobs", ID: "j1", HasID: true}, wantOK: true},
		{name: "protected computer id", path: "/api/v1/customers/c1/protected-computers/pc-1",
			want: Route{Customer: "c1", Resource: "protected-computers", ID: "pc-1", HasID: true}, wantOK: true},
		{name: "customers resource", path: "/api/v1/customers/c1/customers/c2/users",
			want: Route{Customer: "c1", Resource: "customers", ID: "c2", HasID: true}, wantOK: true},

		// locations as the resource itself.
		{name: "locations collection", path: "/api/v1/customers/c1/locations",
			want: Route{Customer: "c1", Resource: "locations"}, wantOK: true},
		{name: "locations item", path: "/api/v1/customers/c1/locations/hq",
			want: Route{Customer: "c1", Resource: "locations", ID: "hq", HasID: true}, wantOK: true},
		{name: "locations item with non-resource after", path: "/api/v1/customers/c1/locations/hq/foo",
			want: Route{Customer: "c1", Resource: "locations", ID: "hq", HasID: true}, wantOK: true},
		{name: "locations item with computers but no resource", path: "/api/v1/customers/c1/locations/hq/computers/pc-1",
			want: Route{Customer: "c1", Resource: "locations", ID: "hq", HasID: true}, wantOK: true},
		{name: "locations item with computers and non-resource", path: "/api/v1/customers/c1/locations/hq/computers/pc-1/foo",
			want: Route{Customer: "c1", Resource: "locations", ID: "hq", HasID: true}, wantOK: true},

		{name: "locations item with computers only", path: "/api/v1/customers/c1/locations/hq/computers",
			want: Route{Customer: "c1", Resource: "locations", ID: "hq", HasID: true}, wantOK: true},

		// Location qualifier.
		{name: "location qualifier", path: "/api/v1/customers/c1/locations/hq/users",
			want: Route{Customer: "c1", Location: "hq", HasLocation: true, Resource: "users"}, wantOK: true},
		{name: "location qualifier with id", path: "/api/v1/customers/c1/locations/hq/users/u1/x",
			want: Route{Customer: "c1", Location: "hq", HasLocation: true, Resource: "users", ID: "u1", HasID: true}, wantOK: true},
		{name: "location qualifier then locations", path: "/api/v1/customers/c1/locations/hq/locations/x",
			want: Route{Customer: "c1", Location: "hq", HasLocation: true, Resource: "locations", ID: "x", HasID: true}, wantOK: true},
		{name: "location qualifier then locations collection", path: "/api/v1/customers/c1/locations/hq/locations",
			want: Route{Customer: "c1", Location: "hq", HasLocation: true, Resource: "locations"}, wantOK: true},
		{name: "location qualifier decoded", path: "/api/v1/customers/c1/locations/head%20office/summary",
			want: Route{Customer: "c1", Location: "head office", HasLocation: true, Resource: "summary"}, wantOK: true},

		// Computer qualifier.
		{name: "computer qualifier", path: "/api/v1/customers/c1/computers/pc-1/agent-jobs",
			want: Route{Customer: "c1", Computer: "pc-1", HasComputer: true, Resource: "agent-jobs"}, wantOK: true},
		{name: "computer qualifier with id", path: "/api/v1/customers/c1/computers/pc-1/agent-jobs/j1",
			want: Route{Customer: "c1", Computer: "pc-1", HasComputer: true, Resource: "agent-jobs", ID: "j1", HasID: true}, wantOK: true},
		{name: "computer qualifier then locations", path: "/api/v1/customers/c1/computers/pc-1/locations/hq/users",
			want: Route{Customer: "c1", Computer: "pc-1", HasComputer: true, Resource: "locations", ID: "hq", HasID: true}, wantOK: true},

		{name: "computer qualifier then locations collection", path: "/api/v1/customers/c1/computers/pc-1/locations",
			want: Route{Customer: "c1", Computer: "pc-1", HasComputer: true, Resource: "locations"}, wantOK: true},

		// Both qualifiers.
		{name: "location and computer", path: "/api/v1/customers/c1/locations/hq/computers/pc-1/agent-jobs",
			want: Route{Customer: "c1", Location: "hq", HasLocation: true, Computer: "pc-1", HasComputer: true, Resource: "agent-jobs"}, wantOK: true},
		{name: "location and computer with id", path: "/api/v1/customers/c1/locations/hq/computers/pc-1/agent-jobs/j1/logs",
			want: Route{Customer: "c1", Location: "hq", HasLocation: true, Computer: "pc-1", HasComputer: true, Resource: "agent-jobs", ID: "j1", HasID: true}, wantOK: true},

		// No route.
		{name: "root", path: "/"},
		{name: "api only", path: "/api/v1"},
		{name: "customers collection", path: "/api/v1/customers"},
		{name: "customer only", path: "/api/v1/customers/c1"},
		{name: "customer only trailing slash", path: "/api/v1/customers/c1/"},
		{name: "unknown resource", path: "/api/v1/customers/c1/foo"},
		{name: "unknown resource with id", path: "/api/v1/customers/c1/foo/users"},
		{name: "computers is not a resource", path: "/api/v1/customers/c1/computers"},
		{name: "computers item has no route", path: "/api/v1/customers/c1/computers/pc-1"},
		{name: "computers with non-resource", path: "/api/v1/customers/c1/computers/pc-1/foo"},
		{name: "wrong version", path: "/api/v2/customers/c1/users"},
		{name: "wrong prefix", path: "/apix/v1/customers/c1/users"},
		{name: "case matters in prefix", path: "/API/v1/customers/c1/users"},
		{name: "case matters in resource", path: "/api/v1/customers/c1/Users"},
		{name: "singular customer", path: "/api/v1/customer/c1/users"},
		{name: "missing api", path: "/v1/customers/c1/users"},
		{name: "extra prefix", path: "/x/api/v1/customers/c1/users"},

		// users/{id}: an id no user could have (tenantgate help data) has no route.
		{name: "user id with an encoded space", path: "/api/v1/customers/c1/users/alice%40contoso.example%20"},
		{name: "user id non-breaking space", path: "/api/v1/customers/c1/users/%C2%A0"},
		{name: "user id non-ASCII", path: "/api/v1/customers/c1/users/al%C3%AFce"},
		{name: "user id with a comma", path: "/api/v1/customers/c1/users/a,b"},
		{name: "user id encoded comma", path: "/api/v1/customers/c1/users/a%2Cb"},
		{name: "user id with a non-ASCII byte and more segments", path: "/api/v1/customers/c1/users/a%C3%A9b/x"},
		{name: "user id over 256 bytes", path: "/api/v1/customers/c1/users/" + strings.Repeat("a", 257)},
		{name: "user id after a location qualifier", path: "/api/v1/customers/c1/locations/hq/users/%20"},
		{name: "user id 256 bytes", path: "/api/v1/customers/c1/users/" + strings.Repeat("a", 256),
			want: Route{Customer: "c1", Resource: "users", ID: strings.Repeat("a", 256), HasID: true}, wantOK: true},
		{name: "user id visible ASCII", path: "/api/v1/customers/c1/users/%3F!~%5E",
			want: Route{Customer: "c1", Resource: "users", ID: "?!~^", HasID: true}, wantOK: true},
		{name: "other resource id with a space", path: "/api/v1/customers/c1/vbr-jobs/a%20b",
			want: Route{Customer: "c1", Resource: "vbr-jobs", ID: "a b", HasID: true}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs, err := Segments(tt.path, nil)
			if err != nil {
				t.Fatalf("Segments(%q): %v", tt.path, err)
			}
			got, ok := Parse(segs, isResource)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestLocations: every location qualifier, in path order: locations/{l}
// before a catalog resource, and the {id} of the locations resource.
func TestLocations(t *testing.T) {
	for path, want := range map[string][]string{
		"/api/v1/customers/c1/users":                                   nil,
		"/api/v1/customers/c1/locations":                               nil,
		"/api/v1/customers/c1/locations/hq":                            {"hq"},
		"/api/v1/customers/c1/locations/hq/foo":                        {"hq"},
		"/api/v1/customers/c1/locations/hq/users/u1":                   {"hq"},
		"/api/v1/customers/c1/locations/hq/locations":                  {"hq"},
		"/api/v1/customers/c1/locations/hq/locations/branch-1":         {"hq", "branch-1"},
		"/api/v1/customers/c1/locations/hq/computers/pc-1/locations/b": {"hq", "b"},
		"/api/v1/customers/c1/computers/pc-1/locations/hq":             {"hq"},
		"/api/v1/customers/c1/computers/pc-1/agent-jobs":               nil,
		"/api/v1/customers/c1/users/hq":                                nil,
	} {
		segs, err := Segments(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := Parse(segs, isResource)
		if !ok {
			t.Fatalf("Parse(%q): no route", path)
		}
		if got := r.AppendLocations(nil); !slices.Equal(got, want) {
			t.Errorf("%s: locations %q, want %q", path, got, want)
		}
	}
}

func TestParseDefensive(t *testing.T) {
	tests := []struct {
		name       string
		segs       []string
		isResource func(string) bool
	}{
		{name: "nil segments", segs: nil, isResource: isResource},
		{name: "nil catalog", segs: []string{"api", "v1", "customers", "c1", "users"}, isResource: nil},
		{name: "empty catalog", segs: []string{"api", "v1", "customers", "c1", "users"},
			isResource: func(string) bool { return false }},
		{name: "empty customer", segs: []string{"api", "v1", "customers", "", "users"}, isResource: isResource},
		{name: "empty location", segs: []string{"api", "v1", "customers", "c1", "locations", "", "users"}, isResource: isResource},
		{name: "empty id", segs: []string{"api", "v1", "customers", "c1", "users", ""}, isResource: isResource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := Parse(tt.segs, tt.isResource); ok || got != (Route{}) {
				t.Errorf("Parse(%q) = %+v, %v; want no route", tt.segs, got, ok)
			}
		})
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	segs := []string{"api", "v1", "customers", "c1", "locations", "hq", "computers", "pc-1", "agent-jobs", "j1"}
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := Parse(segs, isResource); !ok {
			t.Fatal("no route")
		}
	})
	if allocs != 0 {
		t.Errorf("Parse allocs = %v, want 0", allocs)
	}
	segs = []string{"api", "v1", "customers", "c1", "locations", "hq", "locations", "branch-1"}
	allocs = testing.AllocsPerRun(100, func() {
		r, _ := Parse(segs, isResource)
		var buf [2]string
		if len(r.AppendLocations(buf[:0])) != 2 {
			t.Fatal("want two location qualifiers")
		}
	})
	if allocs != 0 {
		t.Errorf("Parse and AppendLocations allocs = %v, want 0", allocs)
	}
}

var (
	sinkSegs  []string
	sinkRoute Route
)

func BenchmarkSegments(b *testing.B) {
	benches := []struct{ name, raw string }{
		{"plain", "/api/v1/customers/contoso/locations/hq/users/u-17?limit=10"},
		{"escaped", "/api/v1/customers/contoso/users/alice%40contoso.example"},
		{"qualified", "/api/v1/customers/contoso/locations/hq/computers/pc-1/agent-jobs/j-42/sessions"},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]string, 0, 16)
			for b.Loop() {
				segs, err := Segments(bb.raw, buf)
				if err != nil {
					b.Fatal(err)
				}
				sinkSegs = segs
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	segs, err := Segments("/api/v1/customers/contoso/locations/hq/computers/pc-1/agent-jobs/j-42", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r, ok := Parse(segs, isResource)
		if !ok {
			b.Fatal("no route")
		}
		sinkRoute = r
	}
}

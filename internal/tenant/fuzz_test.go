package tenant

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// FuzzLoad: for any two files, Load either fails with errors that each name
// one of the files, or returns Data that satisfies every rule of tenantgate help
// data, re-checked here independently of the loader's own code (ranks,
// parents, roots, one owner, locations and computers, id charsets, lineage
// and suspension), and that says exactly what a plain yaml.v3 decode of the
// same files says (every id, every field). Loading the files in the other
// order gives the same Data. Loaded through a Cache that parsed x before
// beside an empty b.yaml, the outcome is the same again, and the Data that
// earlier load returned is left exactly as it was.
func FuzzLoad(f *testing.F) {
	demoCustomers, err := os.ReadFile("../../data/customers.yaml")
	if err != nil {
		f.Fatal(err)
	}
	demoUsers, err := os.ReadFile("../../data/users.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(demoCustomers), string(demoUsers))
	f.Add(string(demoCustomers)+string(demoUsers[strings.Index(string(demoUsers), "users:"):]), "")
	for _, s := range [][2]string{
		{"customers:\n  a:\n    type: distributor\n  b:\n    type: site\n    parent: a\n    disabled: true\n  c:\n    type: site\n    parent: b\n", ""},
		{"customers:\n  r:\n    type: reseller\n    locations: [x, y, x]\n", "users:\n  u@r:\n    customer: r\n    role: company-user\n    locations: [y, x, y]\n"},
		{"customers:\n  r: {type: end-customer, locations: [l1]}\n", "users:\n  s@r: {customer: r, role: subtenant-user, computers: [pc-2, pc-1, pc-2]}\n"},
		{"customers:\n  r:\n    type: end-customer\n", "users:\n  o1@r:\n    customer: r\n    role: company-owner\n  o2@r:\n    customer: r\n    role: company-owner\n"},
		{"customers:\n  p:\n    type: site\n  q:\n    type: site\n    parent: p\n", ""},
		{"customers:\n  .hidden:\n    type: reseller\n  'a b':\n    type: reseller\n", "users:\n  'x,y':\n    customer: .hidden\n    role: company-user\n"},
		{"customers:\n  a: &c\n    type: reseller\n  b: *c\n", "users:\n  u@a:\n    customer: a\n    role: company-user\n    locations: []\n"},
		{"customers:\n  1234:\n    type: reseller\n    name: 2024-01-01\n", "users:\n  u@x:\n    customer: 1234\n    role: invoice-auditor\n    disabled: false\n"},
		{"customers:\n  a:\n    type: reseller\n    <<: {parent: b}\n", "---\nusers: {}\n---\nusers: {}\n"},
		{"customers:\n  a:\n    type: end-customer\n  a:\n    type: reseller\n", "users:\n  u@a:\n    customer: a\n    role: wizard\n"},
	} {
		f.Add(s[0], s[1])
	}
	// Alias bombs: over the expansion limit, and an alias inside its anchor.
	f.Add(string(nestedAliasBomb(1<<10)), "customers:\n  c: &c {type: reseller, locations: [*c]}\n")
	f.Fuzz(func(t *testing.T, x, y string) {
		files := []File{{Name: "a.yaml", Content: []byte(x)}, {Name: "b.yaml", Content: []byte(y)}}
		d, err := Load(files)
		checkCachedLoad(t, files, d, err)
		if err != nil {
			checkLoadErrors(t, d, err)
			return
		}
		checkRules(t, d)
		checkMatchesPlainDecode(t, d, files)
		again, err := Load([]File{files[1], files[0]})
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("the same files in the other order: %v, or different Data", err)
		}
	})
}

// checkCachedLoad loads files through a Cache whose last load had the same
// a.yaml and a different b.yaml, and compares with the fresh load (d, err).
func checkCachedLoad(t *testing.T, files []File, d *Data, err error) {
	t.Helper()
	c := NewCache()
	// An empty b.yaml first, so the earlier load succeeds whenever a.yaml
	// alone is valid, and its Data can be checked afterwards.
	before := []File{files[0], {Name: "b.yaml"}}
	prev, prevErr := c.Load(before)
	got, gotErr := c.Load(files)
	if (gotErr == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(got, d)) {
		t.Fatalf("through a cache: %v, want %v, or different Data", gotErr, err)
	}
	if err != nil && gotErr.Error() != err.Error() {
		t.Fatalf("through a cache the errors differ:\n%v\nwant\n%v", gotErr, err)
	}
	if prevErr == nil {
		fresh, _ := Load(before)
		if !reflect.DeepEqual(prev, fresh) {
			t.Fatal("a cached load changed the Data an earlier load returned")
		}
	}
}

func checkLoadErrors(t *testing.T, d *Data, err error) {
	t.Helper()
	es, ok := err.(Errors)
	if !ok || len(es) == 0 || d != nil {
		t.Fatalf("error %T %v with data %v: want a non-empty Errors and no data", err, err, d != nil)
	}
	for _, e := range es {
		if (e.File != "a.yaml" && e.File != "b.yaml") || e.Msg == "" || e.Line < 0 {
			t.Fatalf("error %+v does not name one of the files, or says nothing", e)
		}
	}
	_ = es.Error()
}

// The rules of tenantgate help data, written from the spec, not from the loader.
var (
	specTypes = []string{"distributor", "sub-distributor", "reseller", "end-customer", "site"}
	specRoles = []string{"company-owner", "company-administrator", "company-user", "subtenant-user", "invoice-auditor"}
)

func specRank(typ string) int { return slices.Index(specTypes, typ) + 1 }

func specID(s string) bool {
	if len(s) < 1 || len(s) > 128 || s[0] == '.' {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._~@+-", r)) {
			return false
		}
	}
	return true
}

func specUserID(s string) bool {
	if len(s) < 1 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// sortedUnique reports whether s is sorted byte-wise without repeats, which
// is what makes a scope header a plain join.
func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func checkRules(t *testing.T, d *Data) {
	t.Helper()
	if !slices.Equal(d.Files, []string{"a.yaml", "b.yaml"}) || len(d.Digest) != 64 {
		t.Fatalf("files %v, digest %q", d.Files, d.Digest)
	}
	for id, c := range d.Customers {
		if c.ID != id || !specID(id) {
			t.Fatalf("customer key %q: id %q, valid %t", id, c.ID, specID(id))
		}
		if specRank(c.Type) == 0 || c.Rank != specRank(c.Type) {
			t.Fatalf("customer %q: type %q, rank %d", id, c.Type, c.Rank)
		}
		if c.Parent == "" && c.Type == "site" {
			t.Fatalf("customer %q: a site as a root", id)
		}
		if c.Parent != "" {
			p := d.Customers[c.Parent]
			if p == nil || specRank(p.Type) >= specRank(c.Type) {
				t.Fatalf("customer %q: parent %q missing or not of a lower rank", id, c.Parent)
			}
		}
		for i, l := range c.Locations {
			if !specID(l) || slices.Contains(c.Locations[:i], l) {
				t.Fatalf("customer %q: location %q invalid or repeated", id, l)
			}
		}
		// Lineage: walk the parents here; strictly rising ranks mean at
		// most five steps.
		var lineage, suspended []string
		for cur := c; cur != nil; cur = d.Customers[cur.Parent] {
			lineage = append(lineage, cur.ID)
			if cur.Disabled {
				suspended = append(suspended, cur.ID)
			}
			if len(lineage) > len(specTypes) {
				t.Fatalf("customer %q: lineage deeper than %d", id, len(specTypes))
			}
			if cur.Parent == "" {
				break
			}
		}
		if !slices.Equal(c.Lineage, lineage) || !slices.Equal(c.Suspended, suspended) {
			t.Fatalf("customer %q: lineage %v suspended %v, want %v and %v", id, c.Lineage, c.Suspended, lineage, suspended)
		}
	}
	owners := map[string]string{}
	for id, u := range d.Users {
		if u.ID != id || !specUserID(id) {
			t.Fatalf("user key %q: id %q, valid %t", id, u.ID, specUserID(id))
		}
		c := d.Customers[u.Customer]
		if c == nil || !slices.Contains(specRoles, u.Role) {
			t.Fatalf("user %q: customer %q (exists %t), role %q", id, u.Customer, c != nil, u.Role)
		}
		if u.Role == "company-owner" {
			if other, dup := owners[u.Customer]; dup {
				t.Fatalf("customer %q has two owners: %q and %q", u.Customer, other, id)
			}
			owners[u.Customer] = id
		}
		if len(u.Locations) > 0 && u.Role != "company-administrator" && u.Role != "company-user" {
			t.Fatalf("user %q: locations on a %s", id, u.Role)
		}
		for _, l := range u.Locations {
			if !slices.Contains(c.Locations, l) {
				t.Fatalf("user %q: location %q is not one of customer %q's %v", id, l, c.ID, c.Locations)
			}
		}
		if len(u.Computers) > 0 && u.Role != "subtenant-user" {
			t.Fatalf("user %q: computers on a %s", id, u.Role)
		}
		for _, pc := range u.Computers {
			if !specID(pc) {
				t.Fatalf("user %q: computer %q", id, pc)
			}
		}
		if !sortedUnique(u.Locations) || !sortedUnique(u.Computers) {
			t.Fatalf("user %q: locations %v / computers %v not sorted and unique", id, u.Locations, u.Computers)
		}
	}
}

// plainFile is the spec's file format as a plain yaml.v3 decode sees it.
// Scalars decode into strings as written, as the loader reads them.
type plainFile struct {
	Customers map[string]struct {
		Name      string
		Type      string
		Parent    string
		Locations []string
		Disabled  bool
	}
	Users map[string]struct {
		Customer  string
		Role      string
		Locations []string
		Computers []string
		Disabled  bool
	}
}

func dedup(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func sortedSetOf(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// checkMatchesPlainDecode: what loaded is exactly what the files say, no
// more, no less; and a declared `locations: []` on a user never loads.
func checkMatchesPlainDecode(t *testing.T, d *Data, files []File) {
	t.Helper()
	var nc, nu int
	for _, f := range files {
		var pf plainFile
		if err := yaml.Unmarshal(f.Content, &pf); err != nil {
			t.Fatalf("%s loads, but a plain decode fails: %v", f.Name, err)
		}
		nc += len(pf.Customers)
		nu += len(pf.Users)
		for id, want := range pf.Customers {
			c := d.Customers[id]
			if c == nil || c.File != f.Name || c.Name != want.Name || c.Type != want.Type || c.Parent != want.Parent ||
				c.Disabled != want.Disabled || !slices.Equal(c.Locations, dedup(want.Locations)) {
				t.Fatalf("%s: customer %q is %+v, the file says %+v", f.Name, id, c, want)
			}
		}
		for id, want := range pf.Users {
			u := d.Users[id]
			if want.Locations != nil && len(want.Locations) == 0 {
				t.Fatalf("%s: user %q declares locations: [] and still loads", f.Name, id)
			}
			if u == nil || u.File != f.Name || u.Customer != want.Customer || u.Role != want.Role || u.Disabled != want.Disabled ||
				!slices.Equal(u.Locations, sortedSetOf(want.Locations)) || !slices.Equal(u.Computers, sortedSetOf(want.Computers)) {
				t.Fatalf("%s: user %q is %+v, the file says %+v", f.Name, id, u, want)
			}
		}
	}
	if nc != len(d.Customers) || nu != len(d.Users) {
		t.Fatalf("the files declare %d customers and %d users, Data has %d and %d", nc, nu, len(d.Customers), len(d.Users))
	}
}

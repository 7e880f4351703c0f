package tenant

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// base is a valid file most cases build on; its line numbers are asserted.
const base = `customers:
  acme:
    type: distributor
  contoso:
    type: end-customer
    parent: acme
    locations: [hq, branch-1]
users:
  alice:
    customer: contoso
    role: company-owner
`

// wantErr is one expected error; msg is a substring of FieldError.Msg.
type wantErr struct {
	file  string
	line  int
	kind  string
	id    string
	field string
	msg   string
}

// loadErrors calls Load and returns its Errors, failing the test when Load
// succeeds or returns another error type.
func loadErrors(t *testing.T, files ...File) Errors {
	t.Helper()
	d, err := Load(files)
	if err == nil {
		t.Fatalf("Load succeeded, want errors")
	}
	if d != nil {
		t.Errorf("Load returned data with an error")
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load error is %T (%v), want Errors", err, err)
	}
	return es
}

func checkErrors(t *testing.T, got Errors, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.File != w.file || g.Line != w.line || g.Kind != w.kind || g.ID != w.id || g.Field != w.field || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("error %d:\n got  %s:%d kind=%q id=%q field=%q msg=%q\n want %s:%d kind=%q id=%q field=%q msg~%q",
				i, g.File, g.Line, g.Kind, g.ID, g.Field, g.Msg, w.file, w.line, w.kind, w.id, w.field, w.msg)
		}
	}
}

func mustLoad(t *testing.T, files ...File) *Data {
	t.Helper()
	d, err := Load(files)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return d
}

func TestLoadValidation(t *testing.T) {
	tests := []struct {
		name string
		x    string // the content of x.yaml, loaded with base as c.yaml
		want []wantErr
	}{
		// Structure and YAML types.
		{"unknown top-level key", "customer:\n  zed:\n    type: distributor\n",
			[]wantErr{{"x.yaml", 1, "", "", "customer", "unknown top-level key"}}},
		{"top level not a mapping", "- customers\n",
			[]wantErr{{"x.yaml", 1, "", "", "", "the top level must be a mapping"}}},
		{"customers not a mapping", "customers: [zed]\n",
			[]wantErr{{"x.yaml", 1, "", "", "customers", "must be a mapping of id to entry, got a list"}}},
		{"duplicate top-level key", "users: {}\nusers: {}\n",
			[]wantErr{{"x.yaml", 2, "", "", "users", "duplicate key (first at line 1)"}}},
		{"unknown customer field", "customers:\n  zed:\n    type: distributor\n    owner: bob\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "owner", "unknown field"}}},
		{"unknown user field", "users:\n  bob:\n    customer: contoso\n    role: company-user\n    email: b@x\n",
			[]wantErr{{"x.yaml", 5, "user", "bob", "email", "unknown field"}}},
		{"duplicate customer id in one file", "customers:\n  zed:\n    type: distributor\n  zed:\n    type: reseller\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "", "duplicate customer id in this file (first at line 2)"}}},
		{"duplicate user id in one file", "users:\n  bob:\n    customer: contoso\n    role: company-user\n  bob:\n    customer: contoso\n    role: invoice-auditor\n",
			[]wantErr{{"x.yaml", 5, "user", "bob", "", "duplicate user id in this file (first at line 2)"}}},
		{"duplicate field", "customers:\n  zed:\n    type: distributor\n    type: reseller\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "type", "duplicate field (first at line 3)"}}},
		{"customer in two files names both", "customers:\n  contoso:\n    type: end-customer\n    parent: acme\n",
			[]wantErr{{"x.yaml", 2, "customer", "contoso", "", "also declared in c.yaml:4"}}},
		{"user in two files names both", "users:\n  alice:\n    customer: contoso\n    role: invoice-auditor\n",
			[]wantErr{{"x.yaml", 2, "user", "alice", "", "also declared in c.yaml:9"}}},
		{"scalar instead of a list", "users:\n  bob:\n    customer: contoso\n    role: company-user\n    locations: hq\n",
			[]wantErr{{"x.yaml", 5, "user", "bob", "locations", `must be a list of ids, got "hq"`}}},
		{"quoted yes is not a boolean", "users:\n  bob:\n    customer: contoso\n    role: company-user\n    disabled: \"yes\"\n",
			[]wantErr{{"x.yaml", 5, "user", "bob", "disabled", `must be true or false, got "yes"`}}},
		{"plain yes is not a boolean", "customers:\n  zed:\n    type: distributor\n    disabled: yes\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "disabled", `must be true or false, got "yes"`}}},
		{"boolean is not a string", "customers:\n  zed:\n    name: true\n    type: distributor\n",
			[]wantErr{{"x.yaml", 3, "customer", "zed", "name", "must be a string, got the boolean true"}}},
		{"user entry not a mapping", "users:\n  bob: company-user\n",
			[]wantErr{{"x.yaml", 2, "user", "bob", "", `must be a mapping of fields, got "company-user"`}}},
		{"customer entry not a mapping is still declared", "customers:\n  zed:\nusers:\n  bob:\n    customer: zed\n    role: company-user\n",
			[]wantErr{{"x.yaml", 2, "customer", "zed", "", "must be a mapping of fields, got an empty value"}}},
		{"null key", "customers:\n  ~:\n    type: distributor\n",
			[]wantErr{{"x.yaml", 2, "customer", "", "", "a customer id must be a plain string, got an empty value"}}},
		{"list entry not an id", "users:\n  carol:\n    customer: contoso\n    role: subtenant-user\n    computers:\n      - pc-1\n      - {id: pc-2}\n",
			[]wantErr{{"x.yaml", 7, "user", "carol", "computers", "an entry must be an id, got a mapping"}}},

		// YAML syntax and documents.
		{"syntax error", "customers:\n  zed: type: distributor\n",
			[]wantErr{{"x.yaml", 2, "", "", "", "invalid YAML: mapping values are not allowed"}}},
		{"syntax error on the first line", "customers: type: x\n",
			[]wantErr{{"x.yaml", 1, "", "", "", "invalid YAML: mapping values are not allowed"}}},
		{"unknown anchor", "customers:\n  zed:\n    type: *kind\n",
			[]wantErr{{"x.yaml", 3, "", "", "", "invalid YAML: unknown anchor 'kind'"}}},
		{"control character", "customers:\n  zed:\n    name: a\x01b\n    type: distributor\n",
			[]wantErr{{"x.yaml", 3, "", "", "", "invalid YAML: control characters"}}},
		{"second document", "customers: {}\n---\nusers: {}\n",
			[]wantErr{{"x.yaml", 2, "", "", "", "a second YAML document (after ---) is not supported"}}},

		// Ids.
		{"customer id with a space", "customers:\n  bad id:\n    type: distributor\n",
			[]wantErr{{"x.yaml", 2, "customer", "bad id", "", "invalid customer id"}}},
		{"customer id starting with a dot", "customers:\n  .zed:\n    type: distributor\n",
			[]wantErr{{"x.yaml", 2, "customer", ".zed", "", "invalid customer id"}}},
		{"customer id over 128 bytes", "customers:\n  " + strings.Repeat("a", 129) + ":\n    type: distributor\n",
			[]wantErr{{"x.yaml", 2, "customer", strings.Repeat("a", 129), "", "invalid customer id"}}},
		{"user id with a comma", "users:\n  \"b,ob\":\n    customer: contoso\n    role: company-user\n",
			[]wantErr{{"x.yaml", 2, "user", "b,ob", "", "invalid user id"}}},
		{"user id with a space", "users:\n  \"b ob\":\n    customer: contoso\n    role: company-user\n",
			[]wantErr{{"x.yaml", 2, "user", "b ob", "", "invalid user id"}}},
		{"user id over 256 bytes", "users:\n  " + strings.Repeat("u", 257) + ":\n    customer: contoso\n    role: company-user\n",
			[]wantErr{{"x.yaml", 2, "user", strings.Repeat("u", 257), "", "invalid user id"}}},
		{"invalid location id", "customers:\n  zed:\n    type: distributor\n    locations: [ok, \"no/way\"]\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "locations", `invalid id "no/way"`}}},
		{"invalid computer id", "users:\n  carol:\n    customer: contoso\n    role: subtenant-user\n    computers:\n      - pc-1\n      - pc,2\n",
			[]wantErr{{"x.yaml", 7, "user", "carol", "computers", `invalid id "pc,2"`}}},

		// Customer types and the tree.
		{"unknown type", "customers:\n  zed:\n    type: partner\n",
			[]wantErr{{"x.yaml", 3, "customer", "zed", "type", `unknown type "partner"`}}},
		{"missing type", "customers:\n  zed:\n    name: Zed\n",
			[]wantErr{{"x.yaml", 2, "customer", "zed", "type", "missing"}}},
		{"parent does not exist", "customers:\n  zed:\n    type: reseller\n    parent: nobody\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "parent", `customer "nobody" does not exist`}}},
		{"parent ranks below child", "customers:\n  zed:\n    type: reseller\n    parent: contoso\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "parent", `a reseller cannot be below end-customer "contoso"`}}},
		{"parent of the same rank", "customers:\n  zed:\n    type: end-customer\n    parent: contoso\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "parent", `a end-customer cannot be below end-customer "contoso"`}}},
		{"own parent", "customers:\n  zed:\n    type: reseller\n    parent: zed\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "parent", "cannot be its own parent"}}},
		{"site as a root", "customers:\n  zed:\n    type: site\n",
			[]wantErr{{"x.yaml", 2, "customer", "zed", "parent", "a site cannot be a root"}}},
		{"empty parent", "customers:\n  zed:\n    type: reseller\n    parent: \"\"\n",
			[]wantErr{{"x.yaml", 4, "customer", "zed", "parent", "must not be empty"}}},

		// Users.
		{"user customer does not exist", "users:\n  bob:\n    customer: nobody\n    role: company-user\n",
			[]wantErr{{"x.yaml", 3, "user", "bob", "customer", `customer "nobody" does not exist`}}},
		{"user without customer and role", "users:\n  bob:\n    disabled: false\n",
			[]wantErr{
				{"x.yaml", 2, "user", "bob", "customer", "missing"},
				{"x.yaml", 2, "user", "bob", "role", "missing"},
			}},
		{"unknown role", "users:\n  bob:\n    customer: contoso\n    role: admin\n",
			[]wantErr{{"x.yaml", 4, "user", "bob", "role", `unknown role "admin"`}}},
		{"second company-owner names both", "users:\n  zoe:\n    customer: contoso\n    role: company-owner\n",
			[]wantErr{{"x.yaml", 4, "user", "zoe", "role", `customer "contoso" already has a company-owner, user "alice" (c.yaml:9)`}}},
		{"locations on an invoice-auditor", "users:\n  ivan:\n    customer: contoso\n    role: invoice-auditor\n    locations: [hq]\n",
			[]wantErr{{"x.yaml", 5, "user", "ivan", "locations", "only a company-administrator or a company-user can be limited to locations"}}},
		{"computers on a company-user", "users:\n  erin:\n    customer: contoso\n    role: company-user\n    computers: [pc-1]\n",
			[]wantErr{{"x.yaml", 5, "user", "erin", "computers", "only a subtenant-user has computers"}}},
		{"empty locations", "users:\n  bob:\n    customer: contoso\n    role: company-administrator\n    locations: []\n",
			[]wantErr{{"x.yaml", 5, "user", "bob", "locations", "must not be empty"}}},
		{"location not of the customer", "users:\n  bob:\n    customer: contoso\n    role: company-administrator\n    locations:\n      - hq\n      - paris\n",
			[]wantErr{{"x.yaml", 7, "user", "bob", "locations", `location "paris" is not one of customer "contoso"'s locations`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadErrors(t, File{Name: "c.yaml", Content: []byte(base)}, File{Name: "x.yaml", Content: []byte(tt.x)})
			checkErrors(t, got, tt.want)
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	x := "users:\n  bob@x:\n    customer: contoso\n    role: company-user\n    locations: [hq,\n      paris]\n"
	got := loadErrors(t, File{Name: "data/c.yaml", Content: []byte(base)}, File{Name: "data/users.yaml", Content: []byte(x)})
	want := `data/users.yaml:6: user "bob@x": field "locations": location "paris" is not one of customer "contoso"'s locations`
	if got.Error() != want {
		t.Errorf("got  %s\nwant %s", got.Error(), want)
	}
}

func TestLoadReportsAllErrorsSorted(t *testing.T) {
	a := `users:
  bob:
    customer: nobody
    role: company-user
  carol:
    customer: contoso
    role: boss
`
	b := `customers:
  zed:
    type: site
  yan:
    type: distributor
    color: red
users:
  erin:
    customer: contoso
    role: company-user
    locations: [moon]
`
	// Given out of order: errors still come sorted by file, then line.
	got := loadErrors(t, File{Name: "b.yaml", Content: []byte(b)}, File{Name: "c.yaml", Content: []byte(base)}, File{Name: "a.yaml", Content: []byte(a)})
	checkErrors(t, got, []wantErr{
		{"a.yaml", 3, "user", "bob", "customer", "does not exist"},
		{"a.yaml", 7, "user", "carol", "role", "unknown role"},
		{"b.yaml", 2, "customer", "zed", "parent", "a site cannot be a root"},
		{"b.yaml", 6, "customer", "yan", "color", "unknown field"},
		{"b.yaml", 11, "user", "erin", "locations", `location "moon"`},
	})
}

func TestLoadFileGivenTwice(t *testing.T) {
	got := loadErrors(t, File{Name: "c.yaml", Content: []byte(base)}, File{Name: "c.yaml", Content: []byte(base)})
	checkErrors(t, got, []wantErr{{"c.yaml", 0, "", "", "", "file given twice"}})
}

func TestLoadValidEdgeCases(t *testing.T) {
	tests := []struct {
		name      string
		x         string
		customers int // in x.yaml
		users     int
	}{
		{"empty file", "", 0, 0},
		{"only comments", "# nothing yet\n", 0, 0},
		{"only a document marker", "---\n", 0, 0},
		{"empty sections", "customers:\nusers:\n", 0, 0},
		{"explicit document start", "---\ncustomers:\n  zed:\n    type: distributor\n", 1, 0},
		{"numbers and dates are ids", "customers:\n  1234:\n    type: distributor\n  2024-01-01:\n    type: reseller\n    parent: 1234\n", 2, 0},
		{"anchors and aliases", "customers:\n  zed: &dist\n    type: distributor\n  yan: *dist\n", 2, 0},
		{"flow style", "users: {bob: {customer: contoso, role: company-user, locations: [hq]}}\n", 0, 1},
		{"computers may be empty", "users:\n  carol:\n    customer: contoso\n    role: subtenant-user\n    computers: []\n", 0, 1},
		{"false booleans", "users:\n  bob:\n    customer: contoso\n    role: company-user\n    disabled: false\n", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustLoad(t, File{Name: "c.yaml", Content: []byte(base)}, File{Name: "x.yaml", Content: []byte(tt.x)})
			if got, want := len(d.Customers), 2+tt.customers; got != want {
				t.Errorf("customers: got %d, want %d", got, want)
			}
			if got, want := len(d.Users), 1+tt.users; got != want {
				t.Errorf("users: got %d, want %d", got, want)
			}
		})
	}
}

func TestLoadMergesFiles(t *testing.T) {
	customers := "customers:\n  acme:\n    name: ACME\n    type: distributor\n  contoso:\n    type: end-customer\n    parent: acme\n    locations: [hq]\n"
	users := "users:\n  bob:\n    customer: contoso\n    role: company-administrator\n    locations: [hq]\n"
	// A user's customer may come from another file, whatever the order.
	d := mustLoad(t, File{Name: "users.yaml", Content: []byte(users)}, File{Name: "customers.yaml", Content: []byte(customers)})

	if want := []string{"customers.yaml", "users.yaml"}; !slices.Equal(d.Files, want) {
		t.Errorf("Files: got %v, want %v", d.Files, want)
	}
	acme := d.Customers["acme"]
	if acme == nil || acme.Name != "ACME" || acme.Type != TypeDistributor || acme.File != "customers.yaml" || acme.Line != 2 {
		t.Errorf("acme: got %+v", acme)
	}
	bob := d.Users["bob"]
	if bob == nil || bob.Customer != "contoso" || bob.Role != RoleCompanyAdministrator || bob.File != "users.yaml" || bob.Line != 2 ||
		!slices.Equal(bob.Locations, []string{"hq"}) {
		t.Errorf("bob: got %+v", bob)
	}
	if len(d.Digest) != 64 {
		t.Errorf("Digest %q is not hex sha256", d.Digest)
	}
}

func TestLoadDerivesLineage(t *testing.T) {
	tree := `customers:
  dist:
    type: distributor
  sub:
    type: sub-distributor
    parent: dist
    disabled: true
  res:
    type: reseller
    parent: sub
  end:
    type: end-customer
    parent: res
    disabled: true
  site:
    type: site
    parent: end
  lone:
    type: end-customer
  skip:
    type: site
    parent: dist
`
	// Listed children first too, so the derivation cannot rely on file order.
	reversed := "customers:\n  b:\n    type: reseller\n    parent: a\n  a:\n    type: distributor\n"
	d := mustLoad(t, File{Name: "tree.yaml", Content: []byte(tree)}, File{Name: "reversed.yaml", Content: []byte(reversed)})

	tests := []struct {
		id        string
		rank      int
		lineage   []string
		suspended []string
	}{
		{"dist", 1, []string{"dist"}, nil},
		{"sub", 2, []string{"sub", "dist"}, []string{"sub"}},
		{"res", 3, []string{"res", "sub", "dist"}, []string{"sub"}},
		{"end", 4, []string{"end", "res", "sub", "dist"}, []string{"end", "sub"}},
		{"site", 5, []string{"site", "end", "res", "sub", "dist"}, []string{"end", "sub"}},
		{"lone", 4, []string{"lone"}, nil},
		{"skip", 5, []string{"skip", "dist"}, nil},
		{"a", 1, []string{"a"}, nil},
		{"b", 3, []string{"b", "a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			c := d.Customers[tt.id]
			if c == nil {
				t.Fatalf("customer %q missing", tt.id)
			}
			if c.Rank != tt.rank || !slices.Equal(c.Lineage, tt.lineage) || !slices.Equal(c.Suspended, tt.suspended) {
				t.Errorf("got rank %d lineage %v suspended %v, want %d %v %v", c.Rank, c.Lineage, c.Suspended, tt.rank, tt.lineage, tt.suspended)
			}
		})
	}
	// A shared Suspended slice must not be writable through append.
	res, site := d.Customers["res"], d.Customers["site"]
	_ = append(res.Suspended, "x")
	if !slices.Equal(d.Customers["sub"].Suspended, []string{"sub"}) || !slices.Equal(site.Suspended, []string{"end", "sub"}) {
		t.Errorf("append to a Suspended slice changed another customer's")
	}
}

func TestLoadDedupesAndSortsLists(t *testing.T) {
	x := `customers:
  zed:
    type: distributor
    locations: [west, east, west, north]
users:
  bob:
    customer: zed
    role: company-user
    locations: [west, east, west, north]
  carol:
    customer: zed
    role: subtenant-user
    computers: [pc-9, pc-10, pc-9, PC-1]
`
	d := mustLoad(t, File{Name: "x.yaml", Content: []byte(x)})
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"customer locations keep declared order", d.Customers["zed"].Locations, []string{"west", "east", "north"}},
		{"user locations sorted", d.Users["bob"].Locations, []string{"east", "north", "west"}},
		{"user computers sorted byte-wise", d.Users["carol"].Computers, []string{"PC-1", "pc-10", "pc-9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !slices.Equal(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func digest(files []File) string { return digestOf(files, fileSums(files)) }

func TestDigest(t *testing.T) {
	a, b := File{Name: "a.yaml", Content: []byte("customers: {}\n")}, File{Name: "b.yaml", Content: []byte("users: {}\n")}
	ref := mustLoad(t, a, b).Digest
	if ref != digest([]File{a, b}) {
		t.Fatalf("Load's Digest is not digest of the sorted files")
	}
	tests := []struct {
		name  string
		files []File
		same  bool
	}{
		{"same files", []File{a, b}, true},
		{"other order", []File{b, a}, true},
		{"content changed", []File{a, {Name: "b.yaml", Content: []byte("users: {}\n\n")}}, false},
		{"file renamed", []File{a, {Name: "c.yaml", Content: b.Content}}, false},
		{"byte moved from name to content", []File{a, {Name: "b.yam", Content: []byte("lusers: {}\n")}}, false},
		{"byte moved between files", []File{{Name: "a.yaml", Content: []byte("customers: {}\nu")}, {Name: "b.yaml", Content: []byte("sers: {}\n")}}, false},
		{"file left out", []File{a}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := slices.Clone(tt.files)
			slices.SortFunc(fs, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
			if got := digest(fs); (got == ref) != tt.same {
				t.Errorf("digest %s, same as reference = %v, want %v", got, got == ref, tt.same)
			}
		})
	}
}

func TestIDRules(t *testing.T) {
	tests := []struct {
		id         string
		valid      bool // ValidID
		validUser  bool // ValidUserID
		rankOfType int
	}{
		{"contoso", true, true, 0},
		{"A-z_0.9~@+", true, true, 0},
		{"", false, false, 0},
		{".hidden", false, true, 0},
		{"..", false, true, 0},
		{"a.b", true, true, 0},
		{strings.Repeat("a", 128), true, true, 0},
		{strings.Repeat("a", 129), false, true, 0},
		{strings.Repeat("a", 256), false, true, 0},
		{strings.Repeat("a", 257), false, false, 0},
		{"a b", false, false, 0},
		{"a,b", false, false, 0},
		{"a/b", false, true, 0},
		{"a%2Fb", false, true, 0},
		{"é", false, false, 0},
		{"a\x7f", false, false, 0},
		{"distributor", true, true, 1},
		{"site", true, true, 5},
		{"Site", true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.valid {
				t.Errorf("ValidID = %v, want %v", got, tt.valid)
			}
			if got := ValidUserID(tt.id); got != tt.validUser {
				t.Errorf("ValidUserID = %v, want %v", got, tt.validUser)
			}
			if got := Rank(tt.id); got != tt.rankOfType {
				t.Errorf("Rank = %d, want %d", got, tt.rankOfType)
			}
		})
	}
}

package tenant

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// wideAliasBomb is the shape that hurts the loader most: one anchored list
// of ids (half the file) and a user template naming it, then users that
// are each just an alias of the template (the other half). Every alias
// repeats the whole list, so the expansion grows with the square of the
// file's size; it is even valid data.
func wideAliasBomb(size int) []byte {
	var b strings.Builder
	b.WriteString("customers:\n  c: {type: end-customer, locations: &l [")
	for i := 0; b.Len() < size/2; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("l" + strconv.Itoa(i))
	}
	b.WriteString("]}\nusers:\n  u0: &u {customer: c, role: company-user, locations: *l}\n")
	for i := 1; b.Len() < size; i++ {
		b.WriteString("  u" + strconv.Itoa(i) + ": *u\n")
	}
	return []byte(b.String())
}

// nestedAliasBomb is the classic billion laughs: each level a list of ten
// aliases of the level before, nine levels deep (10^9 ids once expanded),
// padded to size with users whose locations name the last level.
func nestedAliasBomb(size int) []byte {
	var b strings.Builder
	b.WriteString("customers:\n  c: {type: end-customer, locations: [lol]}\nusers:\n")
	b.WriteString("  u0: {customer: c, role: company-user, locations: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]}\n")
	for lvl := 1; lvl < 9; lvl++ {
		fmt.Fprintf(&b, "  u%d: {customer: c, role: company-user, locations: &a%d [", lvl, lvl)
		for i := range 10 {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", lvl-1)
		}
		b.WriteString("]}\n")
	}
	for i := 9; b.Len() < size; i++ {
		fmt.Fprintf(&b, "  u%d: {customer: c, role: company-user, locations: *a8}\n", i)
	}
	return []byte(b.String())
}

// loadCost loads files and returns the error and the bytes allocated
// meanwhile (TotalAlloc only grows, so it bounds the peak heap of the load
// from above, whatever the collector did in between).
func loadCost(files []File) (error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Load(files)
	runtime.ReadMemStats(&after)
	return err, after.TotalAlloc - before.TotalAlloc
}

// The README's bound on what loading a file of S bytes allocates, whatever
// it holds: loadMemFactor * S + loadMemSlack (measured worst cases: a dense
// flow list ~150 x S without any alias, a file of errors that aliases repeat
// to just under the expansion limit ~700 x S).
const (
	loadMemFactor = 750
	loadMemSlack  = 8 << 20
)

func loadMemBound(size int) uint64 { return loadMemFactor*uint64(size) + loadMemSlack }

// expandedSize measures content as the loader does, without a limit.
func expandedSize(t *testing.T, content []byte) int64 {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		t.Fatal(err)
	}
	e := expansion{limit: math.MaxInt64 / 4, sizes: map[*yaml.Node]int64{}}
	return e.size(doc.Content[0])
}

// atLimit returns gen(n) for the largest n that is within the expansion
// limit (gen(n+1) is not).
func atLimit(t *testing.T, gen func(n int) []byte) (within, over []byte) {
	t.Helper()
	fits := func(n int) bool {
		c := gen(n)
		return expandedSize(t, c) <= expansionLimit(len(c))
	}
	lo, hi := 1, 2
	for fits(hi) {
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return gen(lo), gen(hi)
}

// sharedList is valid data: a customer with listLen locations, anchored,
// and n users that are each an alias of a template naming that list.
// customer is the users' customer: "c" (valid) or "d", which has no
// locations, so that every location of every user is an error.
func sharedList(listLen int, customer string) func(n int) []byte {
	return func(n int) []byte {
		var b strings.Builder
		b.WriteString("customers:\n  d: {type: end-customer}\n  c: {type: end-customer, locations: &l [")
		for i := range listLen {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("l" + strconv.Itoa(i))
		}
		b.WriteString("]}\nusers:\n  u0: &u {customer: " + customer + ", role: company-user, locations: *l}\n")
		for i := 1; i < n; i++ {
			b.WriteString("  u" + strconv.Itoa(i) + ": *u\n")
		}
		return []byte(b.String())
	}
}

// TestAliasBombIsRefused: a file whose aliases expand past the limit is one
// error that names the file and says what to do, nothing in it is read, and
// loading it allocates no more than the README's bound. Before the limit,
// the 40 KB wide bomb loaded as valid data after allocating ~600 MB (2.6 s),
// the 93 KB one ~3 GB (15 s); the nested ones were refused only by luck (the
// walk reads one level of a list) and bundle staging would have expanded them.
func TestAliasBombIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		msg     string
	}{
		{"wide 40 KB", wideAliasBomb(40 << 10), "over its limit"},
		{"wide 93 KB", wideAliasBomb(93 << 10), "over its limit"},
		{"billion laughs 40 KB", nestedAliasBomb(40 << 10), "over its limit"},
		{"billion laughs 93 KB", nestedAliasBomb(93 << 10), "over its limit"},
		{"billion laughs 1 KB", nestedAliasBomb(1 << 10), "over its limit"},
		{"alias inside its anchor", []byte("customers:\n  c: &c {type: reseller, locations: [*c]}\n"), "names a node that contains it"},
		{"key alias inside its anchor", []byte("customers: &m\n  *m : {type: reseller}\n"), "names a node that contains it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const name = "data/bomb.yaml"
			err, alloc := loadCost([]File{{Name: name, Content: tc.content}, {Name: "data/ok.yaml", Content: []byte(base)}})
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			e := es[0]
			if e.File != name || !strings.Contains(e.Msg, tc.msg) || e.ID != "" || e.Line == 0 {
				t.Errorf("got %+v, want a file-level error at a line of %s saying %q", e, name, tc.msg)
			}
			if tc.msg == "over its limit" && !strings.Contains(e.Msg, "write out what the aliases repeat") {
				t.Errorf("the error %q does not say what to do", e.Msg)
			}
			size := len(tc.content) + len(base)
			t.Logf("%d bytes: allocated %d KB (%.0f x S); %v", size, alloc>>10, float64(alloc)/float64(size), e)
			if bound := loadMemBound(size); alloc > bound {
				t.Errorf("allocated %d KB loading %d bytes, over the bound of %d KB", alloc>>10, size, bound>>10)
			}
		})
	}
}

// TestValidateRefusesAliasBomb: LoadDir, which `tenantgate validate` and
// bundle staging use, obeys the same limit.
func TestValidateRefusesAliasBomb(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	writeFile(t, path, string(wideAliasBomb(40<<10)))
	_, err := LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), path+":") || !strings.Contains(err.Error(), "over its limit") {
		t.Fatalf("LoadDir: %v, want the expansion limit error naming %s", err, path)
	}
}

// TestAliasesWithinLimitLoad: aliases are allowed. A file with a few
// anchors loads as if written out, and a file right at the limit loads
// (and costs no more than the bound) while one alias more is refused.
func TestAliasesWithinLimitLoad(t *testing.T) {
	t.Run("a few anchors", func(t *testing.T) {
		const y = `customers:
  acme: {type: distributor}
  contoso: &ec
    type: end-customer
    parent: acme
    locations: &sites [hq, branch-1, branch-2]
  fabrikam: *ec
users:
  bob@contoso.example: &admin
    customer: &c contoso
    role: company-administrator
    locations: *sites
  eve@contoso.example: *admin
  ann@contoso.example:
    customer: *c
    role: company-user
    locations: [*c]
`
		// ann's location is the customer's id, which is not one of its
		// locations: an alias gives a value, not a pass.
		es := loadErrors(t, File{Name: "x.yaml", Content: []byte(y)})
		checkErrors(t, es, []wantErr{{"x.yaml", 17, "user", "ann@contoso.example", "locations", `location "contoso" is not one of`}})
		d := mustLoad(t, File{Name: "x.yaml", Content: []byte(strings.Replace(y, "[*c]", "*sites", 1))})
		want := []string{"branch-1", "branch-2", "hq"}
		for _, id := range []string{"bob@contoso.example", "eve@contoso.example", "ann@contoso.example"} {
			if u := d.Users[id]; u == nil || u.Customer != "contoso" || !slices.Equal(u.Locations, want) {
				t.Errorf("%s = %+v, want contoso and %v", id, u, want)
			}
		}
		if got := d.Users["eve@contoso.example"]; got.Role != RoleCompanyAdministrator {
			t.Errorf("eve's role = %q, want bob's", got.Role)
		}
		if got := d.Customers["fabrikam"]; got == nil || got.Type != TypeEndCustomer || got.Parent != "acme" || len(got.Locations) != 3 {
			t.Errorf("fabrikam = %+v, want contoso's template", got)
		}
	})
	for _, tc := range []struct {
		name    string
		gen     func(n int) []byte
		wantErr string
	}{
		{"valid, at the limit", sharedList(2000, "c"), ""},
		{"every location an error, at the limit", sharedList(2000, "d"), "more errors not listed"},
		{"small file, at the limit", sharedList(100, "c"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			within, over := atLimit(t, tc.gen)
			err, alloc := loadCost([]File{{Name: "x.yaml", Content: within}})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("within the limit: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("within the limit: %v, want %q", err, tc.wantErr)
			}
			t.Logf("%d bytes expanding to %d (limit %d): allocated %d KB (%.0f x S)",
				len(within), expandedSize(t, within), expansionLimit(len(within)), alloc>>10, float64(alloc)/float64(len(within)))
			if bound := loadMemBound(len(within)); alloc > bound {
				t.Errorf("allocated %d KB loading %d bytes, over the bound of %d KB", alloc>>10, len(within), bound>>10)
			}
			if _, err := Load([]File{{Name: "x.yaml", Content: over}}); err == nil || !strings.Contains(err.Error(), "over its limit") {
				t.Errorf("one alias more: %v, want the limit error", err)
			}
		})
	}
}

// TestErrorsAreCapped: a file with thousands of errors lists the first
// maxErrors and one error that counts the others; ids and field names are
// cut in the text.
func TestErrorsAreCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("customers:\n  c:\n    type: reseller\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "    f%d: x\n", i)
	}
	long := strings.Repeat("x", 10000)
	b.WriteString("  ? " + long + "\n  : {type: reseller}\n") // an explicit key: an implicit one is at most 1024 characters
	es := loadErrors(t, File{Name: "a.yaml", Content: []byte(b.String())}, File{Name: "b.yaml", Content: []byte("users:\n  u: {customer: nobody, role: company-user}\n")})
	if len(es) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(es), maxErrors+1)
	}
	last := es[len(es)-1]
	// 3000 unknown fields, the long id, and b.yaml's unknown customer.
	if want := "2002 more errors not listed"; !strings.Contains(last.Msg, want) || last.File != "a.yaml" {
		t.Errorf("last error %v, want it to say %q", last, want)
	}
	if n := len(es.Error()); n > 200*len(es) {
		t.Errorf("the errors' text is %d bytes, want it short", n)
	}
	e := &FieldError{File: "a.yaml", Line: 1, Kind: "customer", ID: long, Field: long, Msg: "m"}
	if got := e.Error(); len(got) > 600 || !strings.Contains(got, strings.Repeat("x", 256)+"...") {
		t.Errorf("a long id and field are not cut: %d bytes", len(got))
	}
}

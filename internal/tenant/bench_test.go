package tenant

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// genData writes a valid tenant tree of n customers and m users as two
// files, deterministically. The shape is roughly a provider's: a few
// distributors, more sub-distributors and resellers, mostly end-customers
// (with locations) and sites; one owner per customer, then a mix of roles.
func genData(n, m int) []File {
	bounds := [...]int{ // cumulative share of each type, per mille
		max(1, n/100),    // distributors
		max(2, n*3/100),  // + sub-distributors
		max(3, n*13/100), // + resellers
		max(4, n*73/100), // + end-customers; the rest are sites
	}
	ids := make([]string, n)
	types := make([]int, n) // rank - 1
	c := make([]byte, 0, n*90)
	c = append(c, "# generated\ncustomers:\n"...)
	for i := range n {
		id := "c" + strconv.Itoa(i)
		ids[i] = id
		t := 0
		for t < len(bounds) && i >= bounds[t] {
			t++
		}
		types[i] = t
		c = append(c, "  "...)
		c = append(c, id...)
		c = append(c, ":\n    name: Customer "...)
		c = strconv.AppendInt(c, int64(i), 10)
		c = append(c, "\n    type: "...)
		c = append(c, Types[t]...)
		c = append(c, '\n')
		if t > 0 {
			// A parent from the previous type's range.
			lo := 0
			if t > 1 {
				lo = bounds[t-2]
			}
			c = append(c, "    parent: "...)
			c = append(c, ids[lo+i%(bounds[t-1]-lo)]...)
			c = append(c, '\n')
		}
		if t == 3 {
			c = append(c, "    locations: [hq, branch-1, branch-2]\n"...)
		}
		if i%50 == 49 {
			c = append(c, "    disabled: true\n"...)
		}
	}

	u := make([]byte, 0, m*95)
	u = append(u, "# generated\nusers:\n"...)
	for i := range m {
		ci := i % n
		u = append(u, "  user"...)
		u = strconv.AppendInt(u, int64(i), 10)
		u = append(u, '@')
		u = append(u, ids[ci]...)
		u = append(u, ".example:\n    customer: "...)
		u = append(u, ids[ci]...)
		u = append(u, "\n    role: "...)
		hasLocations := types[ci] == 3
		switch {
		case i < n:
			u = append(u, RoleCompanyOwner...)
		case i%4 == 0:
			u = append(u, RoleCompanyAdministrator...)
			if hasLocations {
				u = append(u, "\n    locations: [hq]"...)
			}
		case i%4 == 1:
			u = append(u, RoleCompanyUser...)
			if hasLocations {
				u = append(u, "\n    locations: [branch-2, hq]"...)
			}
		case i%4 == 2:
			u = append(u, RoleSubtenantUser...)
			u = append(u, "\n    computers: [pc-"...)
			u = strconv.AppendInt(u, int64(i), 10)
			u = append(u, ", pc-"...)
			u = strconv.AppendInt(u, int64(i+1), 10)
			u = append(u, ']')
		default:
			u = append(u, RoleInvoiceAuditor...)
		}
		u = append(u, '\n')
		if i%100 == 99 {
			u = append(u, "    disabled: true\n"...)
		}
	}
	return []File{{Name: "customers.yaml", Content: c}, {Name: "users.yaml", Content: u}}
}

func TestGeneratedDataLoads(t *testing.T) {
	for _, size := range []struct{ n, m int }{{5, 5}, {100, 1000}, {2000, 20000}} {
		t.Run(fmt.Sprintf("%d-%d", size.n, size.m), func(t *testing.T) {
			d := mustLoad(t, genData(size.n, size.m)...)
			if len(d.Customers) != size.n || len(d.Users) != size.m {
				t.Fatalf("got %d customers, %d users", len(d.Customers), len(d.Users))
			}
			var sites, deepest int
			for _, c := range d.Customers {
				if c.Type == TypeSite {
					sites++
				}
				deepest = max(deepest, len(c.Lineage))
			}
			if sites == 0 || deepest != 5 {
				t.Errorf("tree has %d sites and depth %d, want some sites and depth 5", sites, deepest)
			}
		})
	}
}

// BenchmarkLoad measures parse, validation and indexing. The large size is
// the one the load must handle well under 2 s: 20,000 customers and
// 200,000 users.
func BenchmarkLoad(b *testing.B) {
	for _, size := range []struct {
		name string
		n, m int
	}{
		{"small", 200, 2000},
		{"large", 20000, 200000},
		{"xl", 100000, 1000000},
	} {
		b.Run(size.name, func(b *testing.B) {
			if size.name == "xl" && testing.Short() {
				b.Skip("xl in -short")
			}
			files := genData(size.n, size.m)
			var total int64
			for _, f := range files {
				total += int64(len(f.Content))
			}
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				d, err := Load(files)
				if err != nil {
					b.Fatal(err)
				}
				if len(d.Users) != size.m {
					b.Fatalf("got %d users", len(d.Users))
				}
			}
		})
	}
}

// BenchmarkParse compares the two ways a file is read: the fast path
// (parseFast) and the yaml.v3 node tree it falls back to.
func BenchmarkParse(b *testing.B) {
	files := genData(20000, 200000)
	users := files[1]
	for _, p := range []struct {
		name  string
		parse func(string, []byte) *parsedFile
	}{
		{"fast", parseFile},
		{"yaml", parseYAML},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(users.Content)))
			b.ReportAllocs()
			for b.Loop() {
				if pf := p.parse(users.Name, users.Content); len(pf.users) != 200000 || len(pf.errs) > 0 {
					b.Fatalf("got %d users, %v", len(pf.users), pf.errs)
				}
			}
		})
	}
}

// TestLoadRetainsLittle: a loaded Data must not keep the YAML node trees
// (some 20 times the input's size) or the load's scratch alive; it needs
// about 1.5 times the input.
func TestLoadRetainsLittle(t *testing.T) {
	files := genData(2000, 20000)
	size := 0
	for _, f := range files {
		size += len(f.Content)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	d, err := Load(files)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int(after.HeapAlloc) - int(before.HeapAlloc)
	if retained > 4*size {
		t.Errorf("Data retains %d KB for %d KB of YAML, want at most 4 times the input", retained>>10, size>>10)
	}
	runtime.KeepAlive(d)
}

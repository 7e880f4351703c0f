package tenant

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestCache: a load through a Cache re-parses only the files whose name or
// content changed, shares the others' users with the earlier Data, gives
// exactly what a fresh Load gives, and never changes a Data it returned
// before: checked after every step, while a reader walks the first Data
// (run with -race), and with the customers split over two files, so that a
// reused file's customers get another lineage.
func TestCache(t *testing.T) {
	parents := File{Name: "parents.yaml", Content: []byte(`
customers:
  acme: {type: distributor}
  northwind: {type: reseller, parent: acme}
`)}
	moved := File{Name: "parents.yaml", Content: []byte(`
customers:
  acme: {type: distributor}
  fabrikam: {type: sub-distributor, parent: acme, disabled: true}
  northwind: {type: reseller, parent: fabrikam}
`)}
	leaves := File{Name: "leaves.yaml", Content: []byte(`
customers:
  contoso: {type: end-customer, parent: northwind, locations: [hq, branch-1]}
`)}
	staff := File{Name: "staff.yaml", Content: []byte(`
users:
  bob@contoso.example: {customer: contoso, role: company-administrator, locations: [hq, branch-1]}
`)}
	subtenants := File{Name: "subtenants.yaml", Content: []byte(`
users:
  carol@contoso.example: {customer: contoso, role: subtenant-user, computers: [pc-2, pc-1]}
`)}
	broken := File{Name: "subtenants.yaml", Content: []byte(`
users:
  carol@contoso.example: {customer: nowhere, role: subtenant-user}
`)}
	renamed := File{Name: "team.yaml", Content: staff.Content}
	edited := File{Name: "staff.yaml", Content: append(staff.Content, "# edited\n"...)}

	c := NewCache()
	start := []File{parents, leaves, staff, subtenants}
	first, err := c.Load(start)
	if err != nil {
		t.Fatal(err)
	}
	// A reader of the serving Data, as the decision path is.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, cu := range first.Customers {
				_ = strings.Join(cu.Lineage, ",") + strings.Join(cu.Suspended, ",") + cu.Parent
			}
			for _, u := range first.Users {
				_ = u.Customer + strings.Join(u.Locations, ",") + strings.Join(u.Computers, ",")
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	type good struct {
		files []File
		data  *Data
	}
	earlier := []good{{start, first}}
	steps := []struct {
		name      string
		files     []File
		wantErr   string
		sharedBob bool // bob's file is unchanged since the last good load
	}{
		{name: "a parent moved under a disabled customer, the leaf's file reused", files: []File{moved, leaves, staff, subtenants}, sharedBob: true},
		{name: "a broken file", files: []File{moved, leaves, staff, broken}, wantErr: `customer "nowhere" does not exist`},
		{name: "fixed again", files: []File{moved, leaves, staff, subtenants}, sharedBob: true},
		{name: "moved back", files: start, sharedBob: true},
		{name: "bob's file renamed", files: []File{parents, leaves, renamed, subtenants}},
		{name: "bob's file edited", files: []File{parents, leaves, edited, subtenants}},
	}
	prev := first
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			wantData, wantErr := Load(st.files)
			got, err := c.Load(st.files)
			if st.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), st.wantErr) || err.Error() != wantErr.Error() {
					t.Fatalf("error %v, want the fresh load's %v", err, wantErr)
				}
				// What a caller does to the errors it gets stays with it.
				for _, e := range err.(Errors) {
					e.Line, e.Msg = 0, ""
				}
				if _, again := c.Load(st.files); again == nil || again.Error() != wantErr.Error() {
					t.Fatalf("after rewriting the returned errors, loading again gives %v", again)
				}
			} else {
				if err != nil || !reflect.DeepEqual(got, wantData) {
					t.Fatalf("through the cache: %v, or not what a fresh load gives", err)
				}
				if shared := got.Users["bob@contoso.example"] == prev.Users["bob@contoso.example"]; shared != st.sharedBob {
					t.Errorf("bob shared with the last good load: %t, want %t", shared, st.sharedBob)
				}
				prev = got
				earlier = append(earlier, good{st.files, got})
			}
			for i, g := range earlier {
				if fresh, _ := Load(g.files); !reflect.DeepEqual(g.data, fresh) {
					t.Errorf("the Data of good load %d changed", i)
				}
			}
		})
	}
	if got := first.Customers["contoso"].Suspended; len(got) != 0 {
		t.Errorf("the first load's contoso is suspended by %v", got)
	}
	if got := earlier[1].data.Customers["contoso"].Suspended; strings.Join(got, ",") != "fabrikam" {
		t.Errorf("after the move, contoso is suspended by %v, want [fabrikam]", got)
	}
}

// An edit to some of many files gives, through the cache (whose users index
// is then redone only for the changed files), exactly what a load without
// the cache gives: users added, removed, moved between files, and an id
// given twice across files refused with the same errors.
func TestCachedIndexMatchesWholeBuild(t *testing.T) {
	var files []File
	files = append(files, File{Name: "c.yaml", Content: []byte("customers:\n  r:\n    type: reseller\n    locations: [a, b]\n")})
	for f := range 20 {
		b := []byte("users:\n")
		for u := range 100 {
			b = fmt.Appendf(b, "  u%d-%d:\n    customer: r\n    role: company-user\n", f, u)
		}
		files = append(files, File{Name: fmt.Sprintf("u%02d.yaml", f), Content: b})
	}
	c := NewCache()
	if _, err := c.Load(files); err != nil {
		t.Fatal(err)
	}
	edit := func(name, from, to string) {
		for i := range files {
			if files[i].Name == name {
				files[i].Content = []byte(strings.Replace(string(files[i].Content), from, to, 1))
				return
			}
		}
		t.Fatalf("no file %s", name)
	}
	for _, step := range []struct {
		name       string
		file, from string
		to         string
		wantErr    bool
	}{
		{"add", "u03.yaml", "users:\n", "users:\n  new:\n    customer: r\n    role: company-owner\n", false},
		{"remove", "u04.yaml", "  u4-7:\n    customer: r\n    role: company-user\n", "", false},
		{"move", "u05.yaml", "users:\n", "users:\n  u4-7:\n    customer: r\n    role: company-user\n    locations: [b]\n", false},
		{"change", "u06.yaml", "u6-1:\n    customer: r\n    role: company-user\n", "u6-1:\n    customer: r\n    role: invoice-auditor\n    disabled: true\n", false},
		{"twice", "u07.yaml", "users:\n", "users:\n  u8-1:\n    customer: r\n    role: company-user\n", true},
		{"fixed", "u07.yaml", "  u8-1:\n    customer: r\n    role: company-user\n", "", false},
	} {
		edit(step.file, step.from, step.to)
		got, err := c.Load(files)
		want, wantErr := Load(files)
		if (err != nil) != step.wantErr || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%s: cached load: %v; whole load: %v", step.name, err, wantErr)
		}
		if err != nil {
			continue
		}
		if !reflect.DeepEqual(got.Users, want.Users) || !reflect.DeepEqual(got.Owners, want.Owners) || !reflect.DeepEqual(got.Customers, want.Customers) {
			t.Fatalf("%s: the cached load's index differs from a whole load's", step.name)
		}
	}
}

package tenant

import (
	"reflect"
	"strings"
	"testing"
)

// TestCache: a load through a Cache re-parses only the files whose content
// changed, shares the others' users with the earlier Data, gives exactly
// what a fresh Load gives, and never changes a Data it returned before,
// including lineages that a customer edit in another file changes.
func TestCache(t *testing.T) {
	customers := File{Name: "customers.yaml", Content: []byte(`
customers:
  acme: {type: distributor}
  northwind: {type: reseller, parent: acme}
  contoso: {type: end-customer, parent: northwind, locations: [hq, branch-1]}
`)}
	moved := File{Name: "customers.yaml", Content: []byte(`
customers:
  acme: {type: distributor}
  fabrikam: {type: sub-distributor, parent: acme, disabled: true}
  northwind: {type: reseller, parent: fabrikam}
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

	c := NewCache()
	first, err := c.Load([]File{customers, staff, subtenants})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		files     []File
		wantErr   string
		sharedBob bool // bob's file is unchanged since the last load
	}{
		{name: "a customer moved under a disabled one", files: []File{moved, staff, subtenants}, sharedBob: true},
		{name: "a broken file", files: []File{moved, staff, broken}, wantErr: `customer "nowhere" does not exist`},
		{name: "fixed again", files: []File{moved, staff, subtenants}, sharedBob: true},
		{name: "back where it started", files: []File{customers, staff, subtenants}, sharedBob: true},
		{name: "bob's file edited", files: []File{customers, {Name: "staff.yaml", Content: append(staff.Content, "# edited\n"...)}, subtenants}},
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
				return
			}
			if err != nil || !reflect.DeepEqual(got, wantData) {
				t.Fatalf("through the cache: %v, or not what a fresh load gives", err)
			}
			if shared := got.Users["bob@contoso.example"] == prev.Users["bob@contoso.example"]; shared != st.sharedBob {
				t.Errorf("bob shared with the last good load: %t, want %t", shared, st.sharedBob)
			}
			prev = got
		})
	}
	// The first Data is still exactly what it was, though later loads
	// derived other lineages from the same parsed files.
	if fresh, _ := Load([]File{customers, staff, subtenants}); !reflect.DeepEqual(first, fresh) {
		t.Error("a later load changed the first load's Data")
	}
	if got := first.Customers["contoso"].Suspended; len(got) != 0 {
		t.Errorf("the first load's contoso is suspended by %v", got)
	}
	if got := prev.Customers["contoso"].Lineage; strings.Join(got, ",") != "contoso,northwind,acme" {
		t.Errorf("contoso's lineage %v after moving back", got)
	}
}

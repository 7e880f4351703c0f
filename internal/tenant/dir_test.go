package tenant

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	dirCustomers = "customers:\n  acme:\n    type: distributor\n"
	dirUsers     = "users:\n  bob:\n    customer: acme\n    role: company-owner\n"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestLoadDirConfigMap reads the layout kubelet writes for a ConfigMap
// volume: the real files in a timestamped dotdir, ..data pointing at it and
// one symlink per key through ..data.
func TestLoadDirConfigMap(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "..2024_01_01_00_00_00.123", "customers.yaml"), dirCustomers)
	writeFile(t, filepath.Join(dir, "..2024_01_01_00_00_00.123", "users.yaml"), dirUsers)
	symlink(t, "..2024_01_01_00_00_00.123", filepath.Join(dir, "..data"))
	symlink(t, "..data/customers.yaml", filepath.Join(dir, "customers.yaml"))
	symlink(t, "..data/users.yaml", filepath.Join(dir, "users.yaml"))

	d, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	want := []string{filepath.Join(dir, "customers.yaml"), filepath.Join(dir, "users.yaml")}
	if !slices.Equal(d.Files, want) {
		t.Errorf("Files: got %v, want %v", d.Files, want)
	}
	if d.Customers["acme"] == nil || d.Users["bob"] == nil {
		t.Errorf("data not loaded: %d customers, %d users", len(d.Customers), len(d.Users))
	}
}

func TestLoadDirIgnoresOtherEntries(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "customers.yaml"), dirCustomers)
	writeFile(t, filepath.Join(dir, "users.yml"), dirUsers)
	// Each of these would fail the load if it were read.
	const broken = "customers: [not: valid\n"
	writeFile(t, filepath.Join(dir, "README.md"), broken)
	writeFile(t, filepath.Join(dir, "notes.txt"), broken)
	writeFile(t, filepath.Join(dir, "users.yaml~"), broken)
	writeFile(t, filepath.Join(dir, "users.yaml.swp"), broken)
	writeFile(t, filepath.Join(dir, "upper.YAML"), broken)
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), broken)
	writeFile(t, filepath.Join(dir, "sub", "more.yaml"), broken)
	writeFile(t, filepath.Join(dir, "dir.yaml", "inner.yaml"), broken)
	symlink(t, "sub", filepath.Join(dir, "linkdir.yaml"))

	d, err := LoadDir(dir)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	want := []string{filepath.Join(dir, "customers.yaml"), filepath.Join(dir, "users.yml")}
	if !slices.Equal(d.Files, want) {
		t.Errorf("Files: got %v, want %v", d.Files, want)
	}
}

func TestLoadDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the dir to load
		want  []string                              // substrings of the error
	}{
		{"missing dir", func(t *testing.T, dir string) string {
			return filepath.Join(dir, "nope")
		}, []string{"nope", "no such file"}},
		{"dir is a file", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "file"), dirCustomers)
			return filepath.Join(dir, "file")
		}, []string{filepath.Join("file")}},
		{"dangling symlink", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "customers.yaml"), dirCustomers)
			symlink(t, "..data/users.yaml", filepath.Join(dir, "users.yaml"))
			return dir
		}, []string{"users.yaml", "no such file"}},
		{"no data files", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "customers"), dirCustomers)
			return dir
		}, []string{"no *.yaml or *.yml files"}},
		{"invalid data names the path", func(t *testing.T, dir string) string {
			writeFile(t, filepath.Join(dir, "customers.yaml"), dirCustomers+"    color: red\n")
			return dir
		}, []string{"customers.yaml:4:", `customer "acme": field "color": unknown field`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t, t.TempDir())
			d, err := LoadDir(dir)
			if err == nil {
				t.Fatalf("LoadDir succeeded, want an error")
			}
			if d != nil {
				t.Errorf("LoadDir returned data with an error")
			}
			for _, w := range append(tt.want, dir) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadDirValidationErrorsAreErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "customers:\n  x:\n    type: site\n")
	_, err := LoadDir(dir)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].File != filepath.Join(dir, "a.yaml") || es[0].Line != 2 {
		t.Fatalf("got %v, want one Errors entry at a.yaml:2", err)
	}
}

// TestLoadShippedData loads the demo tree the README walks through.
func TestLoadShippedData(t *testing.T) {
	d, err := LoadDir(filepath.Join("..", "..", "data"))
	if err != nil {
		t.Fatalf("LoadDir(../../data): %v", err)
	}
	if len(d.Customers) != 7 || len(d.Users) != 10 || len(d.Files) != 2 {
		t.Fatalf("got %d customers, %d users, %d files; want 7, 10, 2", len(d.Customers), len(d.Users), len(d.Files))
	}
	customers := []struct {
		id        string
		typ       string
		lineage   []string
		suspended []string
	}{
		{"acme", TypeDistributor, []string{"acme"}, nil},
		{"acme-east", TypeSubDistributor, []string{"acme-east", "acme"}, nil},
		{"northwind", TypeReseller, []string{"northwind", "acme-east", "acme"}, nil},
		{"contoso", TypeEndCustomer, []string{"contoso", "northwind", "acme-east", "acme"}, nil},
		{"contoso-paris", TypeSite, []string{"contoso-paris", "contoso", "northwind", "acme-east", "acme"}, nil},
		{"fabrikam", TypeEndCustomer, []string{"fabrikam", "northwind", "acme-east", "acme"}, []string{"fabrikam"}},
		{"fabrikam-lyon", TypeSite, []string{"fabrikam-lyon", "fabrikam", "northwind", "acme-east", "acme"}, []string{"fabrikam"}},
	}
	for _, tt := range customers {
		t.Run(tt.id, func(t *testing.T) {
			c := d.Customers[tt.id]
			if c == nil {
				t.Fatalf("customer %q missing", tt.id)
			}
			if c.Type != tt.typ || !slices.Equal(c.Lineage, tt.lineage) || !slices.Equal(c.Suspended, tt.suspended) {
				t.Errorf("got %s %v %v, want %s %v %v", c.Type, c.Lineage, c.Suspended, tt.typ, tt.lineage, tt.suspended)
			}
		})
	}
	users := []struct {
		id, customer, role string
		locations          []string
		computers          []string
		disabled           bool
	}{
		{"owner@acme.example", "acme", RoleCompanyOwner, nil, nil, false},
		{"admin@northwind.example", "northwind", RoleCompanyAdministrator, nil, nil, false},
		{"alice@contoso.example", "contoso", RoleCompanyOwner, nil, nil, false},
		{"bob@contoso.example", "contoso", RoleCompanyAdministrator, []string{"hq"}, nil, false},
		{"erin@contoso.example", "contoso", RoleCompanyUser, []string{"branch-1", "hq"}, nil, false},
		{"carol@contoso.example", "contoso", RoleSubtenantUser, nil, []string{"pc-17", "pc-18"}, false},
		{"ivan@contoso.example", "contoso", RoleInvoiceAuditor, nil, nil, false},
		{"dave@contoso.example", "contoso", RoleInvoiceAuditor, nil, nil, true},
		{"paula@contoso-paris.example", "contoso-paris", RoleCompanyUser, nil, nil, false},
		{"frank@fabrikam.example", "fabrikam", RoleCompanyOwner, nil, nil, false},
	}
	for _, tt := range users {
		t.Run(tt.id, func(t *testing.T) {
			u := d.Users[tt.id]
			if u == nil {
				t.Fatalf("user %q missing", tt.id)
			}
			if u.Customer != tt.customer || u.Role != tt.role || u.Disabled != tt.disabled ||
				!slices.Equal(u.Locations, tt.locations) || !slices.Equal(u.Computers, tt.computers) {
				t.Errorf("got %+v", u)
			}
		})
	}
	if c := d.Customers["contoso"]; !slices.Equal(c.Locations, []string{"hq", "branch-1"}) {
		t.Errorf("contoso locations: got %v", c.Locations)
	}
	if d.Customers["acme"].Name != "ACME Distribution" || d.Customers["northwind"].Name != "Northwind Traders" {
		t.Errorf("names: got %q, %q", d.Customers["acme"].Name, d.Customers["northwind"].Name)
	}
}

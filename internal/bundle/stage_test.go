package bundle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

func TestStageLayout(t *testing.T) {
	out := stageRepo(t, "")
	var got []string
	err := filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, path)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{
		".manifest",
		"policies/authz.rego",
		"policies/tables.rego",
		"tenantgate/tenants/customers.yaml/data.json",
		"tenantgate/tenants/users.yaml/data.json",
	}
	if !slices.Equal(got, want) {
		t.Errorf("staged files %v, want %v", got, want)
	}
	var m Manifest
	b, err := os.ReadFile(filepath.Join(out, ".manifest"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	if m.Revision != "staged" || !slices.Equal(m.Roots, []string{"tenantgate"}) || m.RegoVersion != 1 {
		t.Errorf("manifest %+v", m)
	}
}

// TestStageKeepsScalarsAsWritten stages data whose ids a generic YAML to
// JSON converter would change (numbers, dates, floats), and checks the
// bundle serves exactly what the directory validated.
func TestStageKeepsScalarsAsWritten(t *testing.T) {
	data := t.TempDir()
	writeFile(t, filepath.Join(data, "customers.yml"), `
customers:
  0123:                      # an int to YAML; the id "0123" to tenantgate
    type: distributor
    name: 1e3
  2024-01-01:                # a date to YAML
    type: end-customer
    parent: 0123
    locations: [1.50, hq, 0x1F]
`)
	writeFile(t, filepath.Join(data, "users.yaml"), `
users:
  u@x:
    customer: 2024-01-01
    role: &r company-user
    locations: [1.50]
  v@x:
    customer: "2024-01-01"
    role: *r
    disabled: TRUE
`)
	want, err := tenant.LoadDir(data)
	if err != nil {
		t.Fatal(err)
	}
	if c := want.Customers["2024-01-01"]; c == nil || !slices.Equal(c.Locations, []string{"1.50", "hq", "0x1F"}) {
		t.Fatalf("the directory itself reads %+v", c)
	}
	out := stageRepo(t, data)
	k := signingKey()
	path := writeBundle(t, filepath.Join(t.TempDir(), "b.tar.gz"), fromDir(t, out), &k, DefaultKeyID)
	c, err := newSource(t, Options{Path: path, VerificationKey: publicKeyFile(t, k)}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sameData(want, c.Data); err != nil {
		t.Error(err)
	}
	if c.Data.Customers["0123"] == nil || c.Data.Customers["0123"].Name != "1e3" {
		t.Errorf("customer 0123: %+v", c.Data.Customers["0123"])
	}
	if u := c.Data.Users["v@x"]; u == nil || !u.Disabled || u.Role != "company-user" {
		t.Errorf("user v@x: %+v", u)
	}
	if !slices.Equal(c.Data.Files, []string{"customers.yml", "users.yaml"}) {
		t.Errorf("files %v: want the original names", c.Data.Files)
	}
}

func TestYAMLToJSON(t *testing.T) {
	tests := []struct {
		name, yaml, json, err string
	}{
		{"empty", "", `{}`, ""},
		{"comments only", "# nothing\n", `{}`, ""},
		{"null document", "~\n", `{}`, ""},
		{"scalars as written", "a: 0123\nb: 1.50\nc: 2024-01-01\nd: 'x'\ne: 1e3\n", `{"a":"0123","b":"1.50","c":"2024-01-01","d":"x","e":"1e3"}`, ""},
		{"booleans and null", "a: true\nb: False\nc: ~\nd: yes\n", `{"a":true,"b":false,"c":null,"d":"yes"}`, ""},
		{"no HTML escaping", "a: <&>\n", `{"a":"<&>"}`, ""},
		{"aliases expanded", "a: &x [1, 2]\nb: *x\n", `{"a":["1","2"],"b":["1","2"]}`, ""},
		{"alias as a key", "a: &k key\nm: {*k : 1}\n", `{"a":"key","m":{"key":"1"}}`, ""},
		{"nested", "users:\n  u@x:\n    locations: [hq]\n", `{"users":{"u@x":{"locations":["hq"]}}}`, ""},
		{"list key", "? [a]\n: 1\n", "", "line 1: a key must be a string, number or date"},
		{"bool key", "true: 1\n", "", "a key must be a string"},
		{"binary", "a: !!binary aGk=\n", "", "unsupported value"},
		{"two documents", "a: 1\n---\nb: 2\n", "", "more than one YAML document"},
		{"syntax error", "a: [\n", "", "yaml"},
		{"duplicate key", "a: 1\na: 2\n", "", `line 2: duplicate key "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := YAMLToJSON([]byte(tt.yaml))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %s, %v; want an error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.json {
				t.Errorf("got %s, want %s", got, tt.json)
			}
		})
	}
}

func TestStageErrors(t *testing.T) {
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "users.yaml"), "users:\n  u@x:\n    customer: nowhere\n    role: company-user\n")
	notEmpty := t.TempDir()
	writeFile(t, filepath.Join(notEmpty, "stale.rego"), "package stale\n")
	badPolicies := t.TempDir()
	writeFile(t, filepath.Join(badPolicies, "x.rego"), "package tenantgate.x\n\nthis is not rego\n")

	tests := []struct {
		name string
		opts StageOptions
		want string
	}{
		{"invalid data names file and line", StageOptions{Data: bad, Policies: "../../policies", Out: filepath.Join(t.TempDir(), "o")},
			filepath.Join(bad, "users.yaml") + `:3: user "u@x": field "customer"`},
		{"output not empty", StageOptions{Data: "../../data", Policies: "../../policies", Out: notEmpty}, "is not empty"},
		{"policies that do not compile", StageOptions{Data: "../../data", Policies: badPolicies, Out: filepath.Join(t.TempDir(), "o")}, "x.rego:3"},
		{"missing option", StageOptions{Data: "../../data", Policies: "../../policies"}, "all required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Stage(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Stage: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSameData(t *testing.T) {
	load := func(users string) *tenant.Data {
		d, err := tenant.Load([]tenant.File{{Name: "d.yaml", Content: []byte(
			"customers:\n  c:\n    type: end-customer\n    locations: [hq, b]\nusers:\n" + users)}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := load("  u@x:\n    customer: c\n    role: company-user\n")
	tests := []struct {
		name  string
		other *tenant.Data
		want  string
	}{
		{"same", load("  u@x: {customer: c, role: company-user}\n"), ""},
		{"field differs", load("  u@x:\n    customer: c\n    role: company-user\n    locations: [hq]\n"), `user "u@x"`},
		{"user added", load("  u@x: {customer: c, role: company-user}\n  v@x: {customer: c, role: company-user}\n"), "1 users became"},
		{"user renamed", load("  w@x: {customer: c, role: company-user}\n"), `user "u@x": missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sameData(base, tt.other)
			if tt.want == "" {
				if err != nil {
					t.Errorf("sameData: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("sameData: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

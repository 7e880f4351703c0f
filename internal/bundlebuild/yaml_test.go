package bundlebuild

import (
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

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

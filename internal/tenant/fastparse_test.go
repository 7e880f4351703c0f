package tenant

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// fastSeeds are files in the plain shape and just outside it.
var fastSeeds = []string{
	"customers:\n  a:\n    type: distributor\n  b:\n    type: site\n    parent: a\n    disabled: true\n",
	"# c\ncustomers:\n  # c\n  r:\n    type: reseller   # c\n    locations: [x, y, x]\n\nusers:\n  u@r:\n    customer: r\n    role: company-user\n    locations: [y, x, y]\n",
	"customers:\n    r:\n        type: end-customer\n        locations:\n        - l1\n        - 'l2'\n",
	"users:\n  s@r:\n    customer: r\n    role: subtenant-user\n    computers:\n      - pc-2\n      - \"pc-1\"\n      - pc-2\n",
	"users:\n  'it''s':\n    customer: \"r\"\n    role: 'company-owner'\n    disabled: yes\n",
	"customers:\n  1234:\n    type: reseller\n    name: 2024-01-01\n  0x1f:\n    type: reseller\n    name: Foo [EU], Inc. #1\n    parent: ~\n",
	"customers:\n  a:\n    type: reseller\n    <<: {parent: b}\n",
	"customers:\n  a:\n    type: reseller\n    <<: b\n    type: site\n    bogus: 1\n",
	"customers:\n  a:\n    type: reseller\n    name: x\n      y\n",
	"customers:\n  a:\n    type: reseller\n    locations: []\n    disabled: TRUE\n",
	"users:\n  u:\n    customer: r\n    role: wizard\n    locations: [a b, -c, 'd']\n    computers: [x]\n",
	"customers:\n  a:\n    type: reseller\n  a:\n    type: site\n",
	"customers:\n  a:\n    type: reseller\nusers:\n  b:\n    customer: a\n    role: company-user\ncustomers:\n  c:\n    type: site\n",
	"customers:\n  a:\n    type: reseller\n---\nusers: {}\n",
	"customers:\n  a: &x\n    type: reseller\n  b: *x\n",
	"customers:\n  a:\n    type: reseller\n    name: M\u00fcller GmbH\n",
	"customers:\n  a:\n    type: reseller\n    name: true\n    parent: null\n    locations: [1, 2.5, .inf, ~]\n",
	"customers:\n  a:\n   type: reseller\n   name: x:y\n   parent: http://x\n",
	"customers:\n  a:\n    type: reseller\n    name: a: b\n",
	"users:\n  u:\n    customer: r\n    role: company-user\n    locations:\n    - a\n    - b\n    disabled: false\n",
	`{"customers":{"a":{"type":"reseller","locations":["x","y","x"]},"b":{"type":"site","parent":"a","disabled":true,"name":12}},"users":{"u@a":{"customer":"a","role":"company-user","locations":["y"]}}}`,
	"{\n  \"users\": {\n    \"u\": {\"customer\": \"r\", \"role\": \"wizard\", \"computers\": [1, 2.5e3, null, true]},\n    \"v\": {}\n  }\n}\n",
	`{"customers":{"a":{"type":"reseller","type":"site","bogus":[],"<<":"x"}},"customers":{}}`,
	`{"users":{"u":{"customer":"r","role":"company-user","locations":["a\tb"]}}}`,
	`{}`,
}

// FuzzFastParse: on every input the fast path takes, it gives exactly what
// the yaml.v3 node walk gives: the same entries, lines and errors.
func FuzzFastParse(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add(s)
	}
	for _, name := range []string{"../../data/customers.yaml", "../../data/users.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFastMatchesYAML(t, s)
	})
}

func checkFastMatchesYAML(t *testing.T, s string) bool {
	t.Helper()
	fast, ok := parseFast("f.yaml", []byte(s))
	if !ok {
		return false
	}
	slow := parseYAML("f.yaml", []byte(s))
	if !reflect.DeepEqual(fast.customers, slow.customers) || !reflect.DeepEqual(fast.cmeta, slow.cmeta) {
		t.Fatalf("customers differ on %q:\nfast %+v %+v\nyaml %+v %+v", s, fast.customers, fast.cmeta, slow.customers, slow.cmeta)
	}
	if !reflect.DeepEqual(fast.users, slow.users) || !reflect.DeepEqual(fast.umeta, slow.umeta) || !reflect.DeepEqual(fast.locLines, slow.locLines) {
		t.Fatalf("users differ on %q:\nfast %+v %+v %v\nyaml %+v %+v %v", s, fast.users, fast.umeta, fast.locLines, slow.users, slow.umeta, slow.locLines)
	}
	if !reflect.DeepEqual(fast.errs, slow.errs) || fast.dropped != slow.dropped {
		t.Fatalf("errors differ on %q:\nfast %v\nyaml %v", s, fast.errs, slow.errs)
	}
	return true
}

// The seeds in the plain shape take the fast path (and agree with yaml.v3),
// and the generated data does too; the ones outside it fall back.
func TestFastParseTakesThePlainShape(t *testing.T) {
	taken := 0
	for _, s := range fastSeeds {
		if checkFastMatchesYAML(t, s) {
			taken++
		}
	}
	if taken < len(fastSeeds)/2 {
		t.Errorf("the fast path took only %d of %d seeds", taken, len(fastSeeds))
	}
	for _, s := range []string{
		"customers:\n  a: &x\n    type: reseller\n  b: *x\n",
		"customers:\n  a:\n    type: reseller\n---\nusers: {}\n",
		"customers:\n\ta:\n\t\ttype: reseller\n",
		"customers:\r\n  a:\r\n    type: reseller\r\n",
		"customers:\n  a:\n    type: reseller\n    name: \"a\\tb\"\n",
		"customers:\n  a: {type: reseller}\n",
	} {
		if _, ok := parseFast("f.yaml", []byte(s)); ok {
			t.Errorf("the fast path took %q", s)
		}
	}
	for _, name := range []string{"../../data/customers.yaml", "../../data/users.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !checkFastMatchesYAML(t, string(b)) {
			t.Errorf("the fast path did not take %s", name)
		}
	}
	for _, s := range []string{
		`{"customers":{"a":{"type":"reseller","locations":["x","y","x"]},"b":{"type":"site","parent":"a","disabled":true,"name":12}},"users":{"u@a":{"customer":"a","role":"company-user","locations":["y"]}}}`,
		"{\n  \"users\": {\n    \"u\": {\"customer\": \"r\", \"role\": \"wizard\", \"computers\": [1, 2.5e3, null, true]},\n    \"v\": {}\n  }\n}\n",
		`{}`,
	} {
		if !checkFastMatchesYAML(t, s) {
			t.Errorf("the fast path did not take the JSON %q", s)
		}
	}
	if !checkFastMatchesYAML(t, strings.Repeat("", 0)) {
		t.Error("the fast path did not take an empty file")
	}
}

// The lines a user's cross-file checks report survive however far they are
// from the user's own line: before it (through an alias) or hundreds of
// lines after it.
func TestUserLinesFarFromTheUser(t *testing.T) {
	far := "users:\n  a: &m\n    customer: nope\n    role: company-user\n  b: *m\n  c:\n" + strings.Repeat("    # note\n", 300) + "    customer: gone\n    role: company-user\n"
	_, err := Load([]File{{Name: "u.yaml", Content: []byte(far)}})
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v", err)
	}
	want := map[string]int{"a": 3, "b": 3, "c": 307}
	for _, e := range errs {
		if e.Field != "customer" {
			continue
		}
		if e.Line != want[e.ID] {
			t.Errorf("user %s: customer error at line %d, want %d", e.ID, e.Line, want[e.ID])
		}
		delete(want, e.ID)
	}
	if len(want) > 0 {
		t.Errorf("no customer error for %v in %v", want, errs)
	}
}

// A file over streamPackAt is packed entry by entry as it is read; the
// result is the walk's all the same.
func TestFastParseLargeFile(t *testing.T) {
	files := genData(2000, 20000)
	for _, f := range files {
		if f.Name == "users.yaml" && len(f.Content) < streamPackAt {
			t.Fatalf("users.yaml is %d bytes, want over %d", len(f.Content), streamPackAt)
		}
		if !checkFastMatchesYAML(t, string(f.Content)) {
			t.Errorf("the fast path did not take %s", f.Name)
		}
	}
}

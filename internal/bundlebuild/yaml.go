package bundlebuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// YAMLToJSON converts one tenant data document to JSON the way tenant.Load
// reads YAML: strings, numbers, dates and floats become JSON strings of the
// text as written; booleans and nulls stay booleans and nulls; mapping keys
// are that text too. Aliases are expanded. An empty document is {}. It
// refuses what tenant.Load would refuse anyway (non-scalar keys, a second
// document), so it never invents a meaning.
func YAMLToJSON(content []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return []byte("{}"), nil
	}
	if err != nil {
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	v, err := jsonValue(&doc, 0)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// maxDepth bounds the recursion: tenant data is four levels deep, and an
// alias cycle or a hostile nesting must end in an error, not a stack overflow.
const maxDepth = 32

func jsonValue(n *yaml.Node, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", n.Line, maxDepth)
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return jsonValue(n.Content[0], depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			key, ok := scalarText(k)
			if !ok {
				return nil, fmt.Errorf("line %d: a key must be a string, number or date", k.Line)
			}
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, key)
			}
			v, err := jsonValue(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := jsonValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		if s, ok := scalarText(n); ok {
			return s, nil
		}
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			switch n.Value {
			case "true", "True", "TRUE":
				return true, nil
			case "false", "False", "FALSE":
				return false, nil
			}
		}
		return nil, fmt.Errorf("line %d: unsupported value %q (%s)", n.Line, n.Value, n.ShortTag())
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// scalarText is tenant's reading of a scalar as text: strings, and numbers
// and dates as written.
func scalarText(n *yaml.Node) (string, bool) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value, true
	}
	return "", false
}

// sameData reports the first customer or user that differs between two
// loads, ignoring where each was declared (the file names are the same, the
// lines are not).
func sameData(want, got *tenant.Data) error {
	if len(want.Customers) != len(got.Customers) || len(want.Users) != len(got.Users) {
		return fmt.Errorf("%d customers and %d users became %d and %d",
			len(want.Customers), len(want.Users), len(got.Customers), len(got.Users))
	}
	if err := sameEntries("customer", want.Customers, got.Customers, func(c *tenant.Customer) { c.File, c.Line = "", 0 }); err != nil {
		return err
	}
	return sameEntries("user", want.Users, got.Users, func(u *tenant.User) { u.File, u.Line = "", 0 })
}

// sameEntries compares two id-keyed maps entry by entry, ignoring where each
// entry was declared (strip clears that on copies).
func sameEntries[T any](kind string, want, got map[string]*T, strip func(*T)) error {
	for _, id := range slices.Sorted(maps.Keys(want)) {
		w, g := want[id], got[id]
		if w == nil || g == nil {
			return fmt.Errorf("%s %q: missing", kind, id)
		}
		a, b := *w, *g
		strip(&a)
		strip(&b)
		if !reflect.DeepEqual(a, b) {
			return fmt.Errorf("%s %q: %+v became %+v", kind, id, a, b)
		}
	}
	return nil
}

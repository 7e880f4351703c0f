package tenant

import "testing"

// TestOwnersIndex: company-owners by their lower-cased id, every owner whose
// id folds to the key (ids are case-sensitive, so two may), in declaration
// order; other roles are not listed.
func TestOwnersIndex(t *testing.T) {
	d := mustLoad(t, File{Name: "t.yaml", Content: []byte(`customers:
  a:
    type: end-customer
  b:
    type: end-customer
users:
  Alice@Example.com:
    customer: a
    role: company-owner
  alice@example.COM:
    customer: b
    role: company-owner
  ALICE@example.com:
    customer: a
    role: company-administrator
`)})
	got := d.Owners["alice@example.com"]
	if len(got) != 2 || got[0].ID != "Alice@Example.com" || got[1].ID != "alice@example.COM" {
		t.Fatalf("Owners[alice@example.com] = %v, want the two owners in declaration order", got)
	}
	if len(d.Owners) != 1 {
		t.Errorf("Owners has %d keys, want 1: %v", len(d.Owners), d.Owners)
	}
}

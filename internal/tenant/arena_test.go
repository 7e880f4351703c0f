package tenant

import (
	"strings"
	"testing"
)

// The arena hands out strings and lists that share backing memory; these
// are the properties the index relies on.
func TestArena(t *testing.T) {
	var a arena
	want := []string{"acme", "", strings.Repeat("x", arenaChunk+1), "northwind", strings.Repeat("y", arenaChunk-3), "z"}
	got := make([]string, len(want))
	for i, s := range want {
		got[i] = a.str(s)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("str %d: got %d bytes %.10q, want %d bytes %.10q", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}

	if l := a.list(0); l != nil {
		t.Errorf("list(0) = %#v, want nil (absent and empty lists read the same)", l)
	}
	first := a.strs([]string{"pc-1", "pc-2"})
	second := a.strs([]string{"pc-3"})
	// An append by a reader must copy, never write into the next list.
	grown := append(first, "pc-9")
	if second[0] != "pc-3" || grown[2] != "pc-9" || len(first) != 2 {
		t.Errorf("append to one list changed another: first %q, second %q", first, second)
	}
	big := a.strs(make([]string, arenaSlab+1))
	if len(big) != arenaSlab+1 || cap(big) != arenaSlab+1 {
		t.Errorf("a list of %d: len %d cap %d", arenaSlab+1, len(big), cap(big))
	}

	// Reserved exactly: what is stored fits without a default chunk or slab.
	var small arena
	small.reserve(len("acme")+len("hq"), 1)
	if id, l := small.str("acme"), small.strs([]string{"hq"}); id != "acme" || l[0] != "hq" ||
		small.b.Cap() >= arenaChunk || len(small.slab) != 0 {
		t.Errorf("reserved arena: %q %q, chunk cap %d, slab left %d", id, l, small.b.Cap(), len(small.slab))
	}
}

// A loaded user's lists are sorted sets, clipped, so a reader's append can
// never write into the list beside it in the arena.
func TestLoadedListsAreSortedAndClipped(t *testing.T) {
	d := mustLoad(t, File{Name: "a.yaml", Content: []byte(`
customers:
  contoso: {type: end-customer, locations: [hq, branch-1]}
users:
  bob@contoso.example: {customer: contoso, role: company-administrator, locations: [hq]}
  carol@contoso.example: {customer: contoso, role: subtenant-user, computers: [pc-2, pc-1]}
`)})
	c, bob, carol := d.Customers["contoso"], d.Users["bob@contoso.example"], d.Users["carol@contoso.example"]
	if c == nil || bob == nil || carol == nil {
		t.Fatalf("missing entries: %v %v %v", c, bob, carol)
	}
	if got := strings.Join(carol.Computers, ","); got != "pc-1,pc-2" {
		t.Errorf("carol's computers %q, want sorted pc-1,pc-2", got)
	}
	if cap(carol.Computers) != len(carol.Computers) || cap(bob.Locations) != len(bob.Locations) {
		t.Errorf("lists are not clipped: computers cap %d, locations cap %d", cap(carol.Computers), cap(bob.Locations))
	}
}

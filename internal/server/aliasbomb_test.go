package server

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAliasBombKeepsLastGoodServing: a data file whose aliases expand far
// past the loading limit (tenantgate help data) is a failed reload naming the
// file; the last good snapshot answers every decision while it is tried
// and after. Before the limit, this 40 KB file (valid data once expanded)
// was loaded after ~600 MB and seconds of allocation beside the serving
// snapshot, and its users were let in.
func TestAliasBombKeepsLastGoodServing(t *testing.T) {
	h := start(t)
	rev0 := h.status().Revision
	failures := h.metric(`tenantgate_reloads_total{result="failure"}`)

	// One anchored list of ids (half the file) and users that each alias a
	// template naming it (the other half).
	var b strings.Builder
	b.WriteString("customers:\n  bomb: {type: end-customer, locations: &l [")
	for i := 0; b.Len() < 20<<10; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("l" + strconv.Itoa(i))
	}
	b.WriteString("]}\nusers:\n  bomb-u0: &u {customer: bomb, role: company-user, locations: *l}\n")
	for i := 1; b.Len() < 40<<10; i++ {
		b.WriteString("  bomb-u" + strconv.Itoa(i) + ": *u\n")
	}
	path := filepath.Join(h.dataDir, "bomb.yaml")
	writeFile(t, path, b.String())

	// Decisions go on while the reload is tried: each must be the last
	// good data's answer.
	probes := 0
	eventually(t, "alias bomb reported", 10*time.Second, func() bool {
		probes++
		if got := h.bobBranch(); got != "location_forbidden" {
			t.Fatalf("decision %d while the alias bomb was tried: %s, want the last good data's location_forbidden", probes, got)
		}
		return h.metric(`tenantgate_reloads_total{result="failure"}`) != failures
	})
	t.Logf("%d decisions answered from the last good data meanwhile", probes)
	st := h.status()
	if st.Revision != rev0 || !strings.Contains(st.LastError, path) || !strings.Contains(st.LastError, "over its limit") {
		t.Errorf("status after the alias bomb: revision %s (want %s), error %q (want it to name %s and the limit)", st.Revision, rev0, st.LastError, path)
	}
	if got := h.grpcCheck("GET", "/api/v1/customers/bomb/locations/l0/vbr-jobs", "bomb-u1", nil).reason; got != "unknown_user" {
		t.Errorf("a user of the refused file: %s, want unknown_user", got)
	}
	if got := h.bobBranch(); got != "location_forbidden" {
		t.Errorf("after the alias bomb: %s, want the last good data's location_forbidden", got)
	}
}

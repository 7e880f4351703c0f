package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProductImportsNoDevelopmentTooling keeps the house in order: the
// binary's dependency graph holds no package from internal/devtools (make
// targets' programs) or internal/testkit (test helpers), so nothing written
// for benchmarks or tests can reach production.
func TestProductImportsNoDevelopmentTooling(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages, want the binary's whole graph", len(deps))
	}
	for _, p := range deps {
		if strings.Contains(p, "/internal/devtools") || strings.Contains(p, "/internal/testkit") {
			t.Errorf("the product imports development tooling: %s", p)
		}
	}
}

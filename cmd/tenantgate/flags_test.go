package main

import (
	"strings"
	"testing"
)

// TestServeHelpListsFlags: the flags of issue 9, item 9 are documented in
// serve -h, with their defaults.
func TestServeHelpListsFlags(t *testing.T) {
	_, errs, code := runCLI(t, "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h: exit %d", code)
	}
	for _, want := range []string{"-grpc-reflection"} {
		if !strings.Contains(errs, want) {
			t.Errorf("serve -h does not list %s:\n%s", want, errs)
		}
	}
}

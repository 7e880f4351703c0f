package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want Info
	}{
		{"a release build from a clean tree", debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/tenantgate/tenantgate", Version: "v1.2.3"},
			Deps:      []*debug.Module{{Path: "github.com/open-policy-agent/opa", Version: "v1.10.1"}},
			Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-03T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}},
		}, Info{Version: "v1.2.3", Revision: "abc123", Time: "2026-12-03T10:00:00Z", Go: "go1.26.8", OPA: "v1.10.1"}},
		{"a modified tree is dirty", debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Version: "(devel)"},
			Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}},
		}, Info{Version: "(devel)", Revision: "abc123-dirty", Go: "go1.26.8", OPA: "unknown"}},
		{"no VCS, a replaced OPA", debug.BuildInfo{
			GoVersion: "go1.26.8",
			Deps:      []*debug.Module{{Path: "github.com/open-policy-agent/opa", Version: "v1.10.1", Replace: &debug.Module{Path: "../opa", Version: "v1.10.2"}}},
		}, Info{Version: "unknown", Revision: "unknown", Go: "go1.26.8", OPA: "v1.10.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromBuildInfo(&tc.bi); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestGetKnowsTheOPAVersion: the test binary is built with OPA among its
// dependencies' build info only if something imports it; this package does
// not, so only the Go version is certain here. The binary's own test (cmd)
// checks the OPA version end to end.
func TestGetKnowsGo(t *testing.T) {
	if Get().Go == "" || Get().Go == "unknown" {
		t.Errorf("Get() = %+v: want the Go version", Get())
	}
}

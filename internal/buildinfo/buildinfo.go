// Package buildinfo says which tenantgate is running: its module version,
// the VCS revision it was built from, and the Go and OPA versions inside,
// read from the build information the Go toolchain embeds. `tenantgate
// version`, /v1/status and the tenantgate_build_info metric show it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Info is what a build knows about itself. A field it cannot know (a build
// outside a VCS checkout, `go run`) is "unknown", never empty, so a label or
// a status field always has a value.
type Info struct {
	Version  string `json:"version"`  // the module version, "(devel)" for a local build
	Revision string `json:"revision"` // the VCS commit, with "-dirty" when the tree was modified
	Time     string `json:"time,omitempty"`
	Go       string `json:"go"`
	OPA      string `json:"opa"` // the OPA module the policy runs on
}

const opaModule = "github.com/open-policy-agent/opa"

// Get returns the running binary's build information (read once).
var Get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown", Revision: "unknown", Go: runtime.Version(), OPA: "unknown"}
	}
	return FromBuildInfo(bi)
})

// FromBuildInfo extracts an Info from Go's build information.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, Revision: "unknown", Go: bi.GoVersion, OPA: "unknown"}
	if info.Version == "" {
		info.Version = "unknown"
	}
	if info.Go == "" {
		info.Go = runtime.Version()
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "unknown" {
		info.Revision += "-dirty"
	}
	for _, d := range bi.Deps {
		// OPA's Go module is .../opa with its v1 packages inside; a
		// replace directive points elsewhere but keeps the version asked.
		if d.Path == opaModule || d.Path == opaModule+"/v1" {
			info.OPA = d.Version
			if d.Replace != nil && d.Replace.Version != "" {
				info.OPA = d.Replace.Version
			}
		}
	}
	return info
}

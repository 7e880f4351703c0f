package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"testing"
)

var updateReadme = flag.Bool("update-readme", false, "rewrite the README's nginx and Caddy configs from testdata/")

// readmeParams fill the templates for the README: tenantgate's default HTTP
// address, and example addresses for the proxy and the app.
var readmeParams = proxyParams{
	Dir:    "/var/lib/portal-nginx",
	Listen: "0.0.0.0:8080", Host: "0.0.0.0", Port: 8080,
	Tenantgate: "127.0.0.1:8181",
	Upstream:   "127.0.0.1:8000",
}

// The configs live in the proxies help topic (tenantgate help proxies).
const readmePath = "../docs/topics/proxies.md"

// readmeConfig finds the fenced block that follows the line
// "<!-- config: testdata/<template> -->" in the README: its start and end
// offsets (the block's text, without the fences).
func readmeConfig(readme []byte, kind proxyKind) (start, end int, err error) {
	marker := []byte("<!-- config: testdata/" + kind.template + " -->\n")
	i := bytes.Index(readme, marker)
	if i < 0 || bytes.Count(readme, marker) != 1 {
		return 0, 0, fmt.Errorf("README.md: want the line %q once, before the %s config", bytes.TrimSpace(marker), kind.name)
	}
	rest := readme[i+len(marker):]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 || !bytes.HasPrefix(rest, []byte("```")) {
		return 0, 0, fmt.Errorf("README.md: want a ``` fence right after %q", bytes.TrimSpace(marker))
	}
	start = i + len(marker) + nl + 1
	// The closing fence is the first line that is exactly ```.
	for end = start; end < len(readme); {
		line, _, _ := bytes.Cut(readme[end:], []byte("\n"))
		if string(line) == "```" {
			return start, end, nil
		}
		end += len(line) + 1
	}
	return 0, 0, fmt.Errorf("README.md: the %s config's fence is not closed", kind.name)
}

// TestReadmeProxyConfigs: the nginx and Caddy configs in the README are the
// templates TestProxies runs, filled with readmeParams, byte for byte, so a
// reader copies the tested config and nothing less. After a template
// change: go test ./internal/e2e -run TestReadmeProxyConfigs -update-readme
func TestReadmeProxyConfigs(t *testing.T) {
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range proxyKinds {
		want, err := render(kind, readmeParams)
		if err != nil {
			t.Fatal(err)
		}
		start, end, err := readmeConfig(readme, kind)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(readme[start:end], want) {
			continue
		}
		if *updateReadme {
			readme = append(append(append([]byte{}, readme[:start]...), want...), readme[end:]...)
			continue
		}
		t.Errorf("README.md's %s config differs from testdata/%s rendered with readmeParams: run\n"+
			"  go test ./internal/e2e -run TestReadmeProxyConfigs -update-readme\n--- README\n%s\n--- rendered\n%s",
			kind.name, kind.template, readme[start:end], want)
	}
	if *updateReadme {
		if err := os.WriteFile(readmePath, readme, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

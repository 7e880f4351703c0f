package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/docs"
	"github.com/tenantgate/tenantgate/internal/proxyconfig"
)

// TestConfigPrints: `tenantgate config KIND [flags]` prints exactly what
// proxyconfig renders for those parameters (the output the e2e tests run),
// with every default and with flags given.
func TestConfigPrints(t *testing.T) {
	cases := []struct {
		args []string
		kind string
		p    proxyconfig.Params
	}{
		{[]string{"nginx"}, "nginx", proxyconfig.Params{}},
		{[]string{"nginx", "--listen", "127.0.0.1:9080", "--http-addr=127.0.0.1:18181", "--upstream", "app.internal:3000", "--dir", "/var/lib/portal-nginx"}, "nginx",
			proxyconfig.Params{Listen: "127.0.0.1:9080", HTTPAddr: "127.0.0.1:18181", Upstream: "app.internal:3000", Dir: "/var/lib/portal-nginx"}},
		{[]string{"caddy"}, "caddy", proxyconfig.Params{}},
		{[]string{"caddy", "--listen", ":9080", "--upstream", "127.0.0.1:3000"}, "caddy", proxyconfig.Params{Listen: ":9080", Upstream: "127.0.0.1:3000"}},
		{[]string{"envoy-grpc"}, "envoy-grpc", proxyconfig.Params{}},
		{[]string{"envoy-grpc", "--grpc-addr", "127.0.0.1:19191"}, "envoy-grpc", proxyconfig.Params{GRPCAddr: "127.0.0.1:19191"}},
		{[]string{"envoy-http"}, "envoy-http", proxyconfig.Params{}},
		{[]string{"envoy-http", "--http-addr", "10.0.0.5:8181"}, "envoy-http", proxyconfig.Params{HTTPAddr: "10.0.0.5:8181"}},
		{[]string{"istio"}, "istio", proxyconfig.Params{}},
		{[]string{"kubernetes"}, "kubernetes", proxyconfig.Params{}},
		{[]string{"kubernetes", "--namespace", "shop", "--image", "ghcr.io/acme/tenantgate:1.4", "--app-port", "3000"}, "kubernetes",
			proxyconfig.Params{Namespace: "shop", Image: "ghcr.io/acme/tenantgate:1.4", AppPort: "3000"}},
	}
	kinds := map[string]bool{}
	for _, tc := range cases {
		kinds[tc.kind] = true
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			want, err := proxyconfig.Render(tc.kind, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			out, errs, code := runCLI(t, append([]string{"config"}, tc.args...)...)
			if code != 0 || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if out != string(want) {
				t.Errorf("printed:\n%s\nwant:\n%s", out, want)
			}
			// The output names the command that printed it, flags and all.
			if !strings.Contains(out, "# Printed by: tenantgate config "+tc.kind+" --") {
				t.Errorf("no 'Printed by' line:\n%s", out)
			}
		})
	}
	for _, k := range proxyconfig.Kinds() {
		if !kinds[k.Name] {
			t.Errorf("kind %s is not tested", k.Name)
		}
	}
}

// TestConfigHelp: `config -h` lists the kinds, `config KIND -h` its flags
// with their defaults, and `tenantgate -h` the command.
func TestConfigHelp(t *testing.T) {
	_, errs, code := runCLI(t, "config", "-h")
	if code != 0 {
		t.Fatalf("config -h: exit %d", code)
	}
	for _, k := range proxyconfig.Kinds() {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(k.Name) + ` +` + regexp.QuoteMeta(k.Summary) + `$`).MatchString(errs) {
			t.Errorf("config -h does not list %s:\n%s", k.Name, errs)
		}
		_, help, code := runCLI(t, "config", k.Name, "-h")
		if code != 0 {
			t.Errorf("config %s -h: exit %d", k.Name, code)
		}
		for _, p := range k.Params() {
			if !strings.Contains(help, "-"+p.Flag+" string\n") || !strings.Contains(help, `(default "`+p.Default+`")`) {
				t.Errorf("config %s -h does not show --%s with its default %q:\n%s", k.Name, p.Flag, p.Default, help)
			}
		}
		if !strings.Contains(help, "tenantgate config "+k.Name+" > "+k.File) {
			t.Errorf("config %s -h gives no example:\n%s", k.Name, help)
		}
	}
	if out, _, _ := runCLI(t, "-h"); !strings.Contains(out, "tenantgate config KIND [flags]") {
		t.Errorf("tenantgate -h does not list config:\n%s", out)
	}
}

// TestConfigErrors: each mistake exits 2 with one line that names the flag
// or kind and says what to give instead; nothing is printed on stdout.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{}, []string{"Usage: tenantgate config <kind>", "  nginx "}},
		{[]string{"traefik"}, []string{`tenantgate config: unknown kind "traefik"`, "  kubernetes "}},
		{[]string{"nginx", "--http-addr", "8181"}, []string{`tenantgate config nginx: --http-addr "8181": not host:port; want host:port (e.g. 127.0.0.1:8181)`}},
		{[]string{"envoy-grpc", "--grpc-addr", "unix:///run/tg.sock"}, []string{`--grpc-addr "unix:///run/tg.sock": a Unix socket cannot be rendered here`}},
		{[]string{"caddy", "--upstream", "app:99999"}, []string{`--upstream: port "99999": want a number from 1 to 65535`}},
		{[]string{"nginx", "--dir", "relative"}, []string{`--dir "relative": want a clean absolute path`}},
		{[]string{"kubernetes", "--grpc-addr", "0.0.0.0:9191"}, []string{"--grpc-addr 0.0.0.0:9191: tenantgate is a sidecar", "want 127.0.0.1:PORT"}},
		{[]string{"caddy", "--dir", "/tmp/x"}, []string{"tenantgate config caddy: --dir is not a flag of caddy (only of nginx)"}},
		{[]string{"istio", "--upstream=127.0.0.1:8000"}, []string{"--upstream is not a flag of istio (only of nginx, caddy, envoy-grpc, envoy-http)"}},
		{[]string{"nginx", "--upstrem", "x:1"}, []string{"flag provided but not defined: -upstrem", "did you mean --upstream?"}},
		{[]string{"nginx", "extra"}, []string{"unexpected arguments: extra"}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errs, code := runCLI(t, append([]string{"config"}, tc.args...)...)
			if code != 2 || out != "" {
				t.Fatalf("exit %d, stdout %q, want 2 and nothing", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}

// TestConfigDefaultsAreServes: the configs' default tenantgate addresses
// are the ones `tenantgate serve` listens on by default, so both commands
// with no flags fit together.
func TestConfigDefaultsAreServes(t *testing.T) {
	_, help, code := runCLI(t, "serve", "-h")
	if code != 0 {
		t.Fatalf("serve -h: exit %d", code)
	}
	for flag, want := range map[string]string{"grpc-addr": proxyconfig.DefaultGRPCAddr, "http-addr": proxyconfig.DefaultHTTPAddr} {
		m := regexp.MustCompile(`-` + flag + ` string\n[^\n]*\(default "([^"]*)"\)`).FindStringSubmatch(help)
		if m == nil || m[1] != want {
			t.Errorf("serve --%s default %v, config's %q", flag, m, want)
		}
	}
}

// excerpt is a fenced block of a doc, marked with the command whose output
// it quotes: <!-- excerpt: tenantgate config ARGS -->.
var excerptMarker = regexp.MustCompile("(?m)^<!-- excerpt: tenantgate (config [^>]*?) -->\n```[a-z]*\n")

// TestDocExcerptsArePrinted: every excerpt in the help topics and the
// README is a contiguous part of what its command prints, line for line, and
// the text states that command to the reader; the proxies topic quotes every
// kind. A template edit that changes a quoted line fails here: run the
// stated command and paste the new lines.
func TestDocExcerptsArePrinted(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{"README.md": string(readme)}
	for _, tp := range docs.Topics {
		text, _ := docs.Text(tp.Name)
		pages["tenantgate help "+tp.Name] = text
	}
	quoted := map[string]bool{}
	for page, text := range pages {
		for _, m := range excerptMarker.FindAllStringSubmatchIndex(text, -1) {
			cmd := text[m[2]:m[3]]
			rest := text[m[1]:]
			end := strings.Index("\n"+rest, "\n```\n")
			if end < 0 {
				t.Errorf("%s: the excerpt of %q has no closing fence", page, cmd)
				continue
			}
			block := rest[:end]
			t.Run(page+": "+cmd, func(t *testing.T) {
				args := strings.Fields(cmd)
				out, errs, code := runCLI(t, args...)
				if code != 0 {
					t.Fatalf("tenantgate %s: exit %d: %s", cmd, code, errs)
				}
				if strings.Count(block, "\n") < 3 || !strings.Contains(out, block) {
					t.Errorf("the excerpt is not (3 or more lines of) what `tenantgate %s` prints: run it and paste the lines.\n--- excerpt\n%s--- printed\n%s", cmd, block, out)
				}
				if !strings.Contains(text, "`tenantgate "+cmd+"`") {
					t.Errorf("the page does not state `tenantgate %s` to the reader", cmd)
				}
				if page == "tenantgate help proxies" {
					quoted[args[1]] = true
				}
			})
		}
	}
	for _, k := range proxyconfig.Kinds() {
		if !quoted[k.Name] {
			t.Errorf("tenantgate help proxies quotes nothing of `tenantgate config %s`", k.Name)
		}
	}
}

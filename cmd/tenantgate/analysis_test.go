package main

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/testkit/testdir"
)

var updateAnalysisGolden = flag.Bool("update-analysis-golden", false, "rewrite testdata/*.golden of explain, access, who-can and diff")

const demoFlags = "--data ../../data --policies ../../policies"

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *updateAnalysisGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-analysis-golden to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

// TestAnalysisGolden: the walkthrough's commands on the demo tree.
func TestAnalysisGolden(t *testing.T) {
	for _, tc := range []struct {
		name, args string
		code       int
	}{
		{"explain-bob-branch-1", "explain --user bob@contoso.example --method GET --path /api/v1/customers/contoso/locations/branch-1/vbr-jobs", 3},
		{"explain-bob-branch-1-json", "explain --json --user bob@contoso.example --method GET --path /api/v1/customers/contoso/locations/branch-1/vbr-jobs", 3},
		{"explain-alice-allowed", "explain --user alice@contoso.example --method POST --path /api/v1/customers/contoso/vbr-jobs", 0},
		{"access-bob", "access --user bob@contoso.example", 0},
		{"access-carol-json", "access --json --user carol@contoso.example --customer contoso-paris", 0},
		{"who-can-delete-alice", "who-can --method DELETE --path /api/v1/customers/contoso/users/alice@contoso.example", 0},
		{"who-can-delete-alice-json", "who-can --json --method DELETE --path /api/v1/customers/contoso/users/alice@contoso.example", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, append(strings.Fields(tc.args), strings.Fields(demoFlags)...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			golden(t, tc.name, out)
		})
	}
}

func TestExplainToken(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("explain-test-secret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, errOut, code := runCLI(t, "token", "--jwt-hs256-secret-file", secret, "--user", "bob@contoso.example", "--data", "../../data")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut)
	}
	args := append([]string{"explain", "--jwt-hs256-secret-file", secret, "--path", "/api/v1/customers/contoso/vbr-jobs"}, strings.Fields(demoFlags)...)
	out, errOut, code := runCLI(t, append(args, "--token", strings.TrimSpace(tok))...)
	if code != 0 || !strings.Contains(out, "as bob@contoso.example") || !strings.Contains(out, "ALLOW 200 allowed") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = runCLI(t, append(args, "--token", "not.a.token")...)
	if code != 3 || !strings.Contains(out, "token rejected") || !strings.Contains(out, "DENY 401 unauthenticated") {
		t.Fatalf("bad token: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, "explain", "--token", "x", "--path", "/x"); code != 2 || !strings.Contains(errOut, "--jwt-hs256-secret-file") {
		t.Errorf("--token without keys: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "explain", "--path", "/x"); code != 2 || !strings.Contains(errOut, "--user") {
		t.Errorf("neither --user nor --token: exit %d: %s", code, errOut)
	}
}

// bobGainsBranch1 is the walkthrough's hot edit.
func bobGainsBranch1(t *testing.T, data string) {
	t.Helper()
	p := filepath.Join(data, "users.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "    locations: [hq]              # limited", "    locations: [hq, branch-1]    # limited", 1)
	if s == string(b) {
		t.Fatal("the demo users.yaml no longer has bob's locations line")
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDiffDirs: the walkthrough's hot edit, as text (golden) and JSON, and
// the exit codes: 1 on a change, 0 on none, 2 on an error naming file and line.
func TestDiffDirs(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	testdir.CopyTo(t, "../../data", data)
	bobGainsBranch1(t, data)

	out, errOut, code := runCLI(t, "diff", "--data", "../../data", "--data-new", data, "--policies", "../../policies")
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut)
	}
	golden(t, "diff-bob-gains-branch-1", out)

	out, _, code = runCLI(t, "diff", "--json", "--data", "../../data", "--data-new", data, "--policies", "../../policies")
	var d struct {
		Changes []struct {
			User, Customer, Resource, Location, Method string
			Before, After                              struct{ Allowed bool }
		}
		Summary struct {
			UsersChecked int `json:"users_evaluated"`
		}
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	// Bob gains branch-1, and his unqualified reads now carry both
	// locations in x-tenantgate-locations.
	for _, c := range d.Changes {
		gain := c.Location == "branch-1" && !c.Before.Allowed && c.After.Allowed
		header := c.Location == "" && c.Before.Allowed && c.After.Allowed
		if c.User != "bob@contoso.example" || !gain && !header {
			t.Errorf("unexpected change %+v", c)
		}
	}
	if len(d.Changes) == 0 || d.Summary.UsersChecked != 1 {
		t.Errorf("%d changes, %d users evaluated", len(d.Changes), d.Summary.UsersChecked)
	}

	if out, errOut, code := runCLI(t, "diff", "--data", "../../data", "--data-new", "../../data", "--policies", "../../policies"); code != 0 || !strings.Contains(out, "no access changes") {
		t.Errorf("no change: exit %d: %s%s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(data, "bad.yaml"), []byte("users:\n  x@y:\n    customer: nowhere\n    role: company-user\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "diff", "--data", "../../data", "--data-new", data, "--policies", "../../policies")
	if code != 2 || !strings.Contains(errOut, "bad.yaml:3") {
		t.Errorf("bad new data: exit %d, stderr %q; want 2 and bad.yaml:3", code, errOut)
	}
	if _, errOut, code := runCLI(t, "diff", "--data", "../../data"); code != 2 || !strings.Contains(errOut, "--data-new") {
		t.Errorf("no new version: exit %d: %s", code, errOut)
	}
}

// TestDiffGit: --git REV against a real git repository in a temp dir.
func TestDiffGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	data, pols := filepath.Join(repo, "tenants"), filepath.Join(repo, "policies")
	testdir.CopyTo(t, "../../data", data)
	testdir.CopyTo(t, "../../policies", pols)
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q")
	gitRun("add", ".")
	gitRun("commit", "-q", "-m", "demo")

	diffArgs := []string{"diff", "--git", "HEAD", "--data", data, "--policies", pols}
	if out, errOut, code := runCLI(t, diffArgs...); code != 0 {
		t.Fatalf("clean tree: exit %d: %s%s", code, out, errOut)
	}
	bobGainsBranch1(t, data)
	out, errOut, code := runCLI(t, diffArgs...)
	if code != 1 || !strings.Contains(out, "bob@contoso.example gains POST contoso/locations/branch-1/vbr-jobs") {
		t.Fatalf("after the edit: exit %d: %s%s", code, out, errOut)
	}
	gitRun("commit", "-q", "-am", "bob gains branch-1")
	if out, errOut, code := runCLI(t, diffArgs...); code != 0 {
		t.Errorf("committed: exit %d: %s%s", code, out, errOut)
	}
	// The previous revision is now the old version.
	if out, _, code := runCLI(t, "diff", "--git", "HEAD~1", "--data", data, "--policies", pols); code != 1 || !strings.Contains(out, "gains") {
		t.Errorf("HEAD~1: exit %d: %s", code, out)
	}
	// A bad version at the revision names the revision's file and line.
	if err := os.WriteFile(filepath.Join(data, "users.yaml"), []byte("users:\n  z@x:\n    customer: contoso\n    role: boss\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun("commit", "-q", "-am", "bad")
	testdir.CopyTo(t, "../../data", data)
	_, errOut, code = runCLI(t, diffArgs...)
	if code != 2 || !strings.Contains(errOut, "HEAD:tenants/users.yaml:4") {
		t.Errorf("bad old version: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, "diff", "--git", "no-such-rev", "--data", data, "--policies", pols); code != 2 || !strings.Contains(errOut, "no-such-rev") {
		t.Errorf("bad revision: exit %d: %s", code, errOut)
	}
}

// TestSweepsTakeTheEvaluatorFlag: access, who-can and diff decide with the
// evaluator asked for (ir after its self-check, or rego), with the same
// answers, and refuse an unknown one.
func TestSweepsTakeTheEvaluatorFlag(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	testdir.CopyTo(t, "../../data", data)
	bobGainsBranch1(t, data)
	for _, args := range [][]string{
		append([]string{"access", "--user", "carol@contoso.example"}, strings.Fields(demoFlags)...),
		append([]string{"who-can", "--method", "POST", "--path", "/api/v1/customers/contoso/locations/branch-1/vbr-jobs"}, strings.Fields(demoFlags)...),
		{"diff", "--json", "--data", "../../data", "--data-new", data, "--policies", "../../policies"},
	} {
		var outs []string
		for _, ev := range []string{"ir", "rego"} {
			out, errOut, code := runCLI(t, append(args, "--evaluator", ev)...)
			if code > 1 || errOut != "" {
				t.Fatalf("%s --evaluator %s: exit %d: %s", args[0], ev, code, errOut)
			}
			outs = append(outs, out)
		}
		if outs[0] != outs[1] {
			t.Errorf("%s: ir and rego differ:\n%s\n---\n%s", args[0], outs[0], outs[1])
		}
		if _, errOut, code := runCLI(t, append(args, "--evaluator", "fast")...); code != 2 || !strings.Contains(errOut, `--evaluator "fast"`) {
			t.Errorf("%s --evaluator fast: exit %d: %s", args[0], code, errOut)
		}
	}
}

// TestReadmeQuotesTheGoldenOutputs: every output line the README's
// walkthrough shows under an explain, access, who-can or diff command (the
// "# " lines, "..." elisions aside) is a line of that command's golden
// output, which TestAnalysisGolden and TestDiffDirs hold to what it prints.
func TestReadmeQuotesTheGoldenOutputs(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	goldens := map[string]string{
		"explain": "explain-bob-branch-1", "access": "access-bob",
		"who-can": "who-can-delete-alice", "diff": "diff-bob-gains-branch-1",
	}
	seen := map[string]int{}
	cmd := ""
	var lines map[string]bool
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "bin/tenantgate "):
			cmd = strings.Fields(l)[1]
			lines = nil
			if g, ok := goldens[cmd]; ok {
				out, err := os.ReadFile(filepath.Join("testdata", g+".golden"))
				if err != nil {
					t.Fatal(err)
				}
				lines = map[string]bool{}
				for _, o := range strings.Split(string(out), "\n") {
					lines[strings.TrimRight(o, " ")] = true
				}
			}
		case lines != nil && strings.HasPrefix(l, "#"):
			q := strings.TrimPrefix(strings.TrimPrefix(l, "#"), " ")
			if strings.TrimSpace(q) == "..." {
				continue
			}
			seen[cmd]++
			if !lines[q] {
				t.Errorf("README quotes %q under `tenantgate %s`, which does not print it (testdata/%s.golden)", q, cmd, goldens[cmd])
			}
		case !strings.HasPrefix(l, "#"):
			lines = nil
		}
	}
	for cmd := range goldens {
		if seen[cmd] < 3 {
			t.Errorf("the README walkthrough quotes %d lines of `tenantgate %s`; want its output shown", seen[cmd], cmd)
		}
	}
}

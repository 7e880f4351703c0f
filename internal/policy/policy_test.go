package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func repoPolicies(t *testing.T) []File {
	t.Helper()
	files, err := ReadDir("../../policies")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestReadDirSkipsTests(t *testing.T) {
	for _, f := range repoPolicies(t) {
		if strings.HasSuffix(f.Name, "_test.rego") {
			t.Errorf("%s: test files must not be served", f.Name)
		}
	}
	if _, err := ReadDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .rego files") {
		t.Errorf("empty dir: %v", err)
	}
}

// withDecision compiles the repository's tables with a replacement
// authz package whose decision is the given Rego expression.
func withDecision(t *testing.T, expr string) *Policy {
	t.Helper()
	var files []File
	for _, f := range repoPolicies(t) {
		if filepath.Base(f.Name) == "tables.rego" {
			files = append(files, f)
		}
	}
	files = append(files, File{Name: "authz.rego", Content: []byte("package tenantgate.authz\n\ndecision := " + expr + "\n")})
	p, err := Compile(context.Background(), files)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEvalRejectsMalformedDecisions: whatever a policy edit returns, only a
// well-formed decision is used; anything else is an error (fail closed).
func TestEvalRejectsMalformedDecisions(t *testing.T) {
	cases := []struct{ name, expr, wantErr string }{
		{"not an object", `true`, "want object"},
		{"allowed not boolean", `{"allowed": "yes", "status": 200, "reason": "allowed"}`, `"allowed"`},
		{"status not integer", `{"allowed": false, "status": 403.5, "reason": "x"}`, `"status"`},
		{"allowed with 403", `{"allowed": true, "status": 403, "reason": "allowed"}`, "allowed with status 403"},
		{"denied with 200", `{"allowed": false, "status": 200, "reason": "x"}`, "denied with status 200"},
		{"empty reason", `{"allowed": false, "status": 403, "reason": ""}`, `"reason"`},
		{"headers not object", `{"allowed": true, "status": 200, "reason": "allowed", "headers": ["x"]}`, `"headers"`},
		{"header value not string", `{"allowed": true, "status": 200, "reason": "allowed", "headers": {"x-a": 1}}`, "not a valid"},
		{"header injection", `{"allowed": true, "status": 200, "reason": "allowed", "headers": {"x-a": "a\r\nx-b: c"}}`, "not a valid"},
		{"upper-case header name", `{"allowed": true, "status": 200, "reason": "allowed", "headers": {"X-A": "a"}}`, "not a valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := withDecision(t, tc.expr)
			_, err := p.Eval(context.Background(), ast.NewObject())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
	t.Run("undefined", func(t *testing.T) {
		p := withDecision(t, `1 if false`)
		if _, err := p.Eval(context.Background(), ast.NewObject()); err == nil || !strings.Contains(err.Error(), "0 results") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("well formed", func(t *testing.T) {
		p := withDecision(t, `{"allowed": true, "status": 200, "reason": "allowed", "headers": {"x-b": "2", "x-a": "1"}}`)
		d, err := p.Eval(context.Background(), ast.NewObject())
		if err != nil || !d.Allowed || len(d.Headers) != 2 || d.Headers[0].Name != "x-a" {
			t.Fatalf("%+v %v", d, err)
		}
	})
}

func TestCompileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.rego"), []byte("package tenantgate.authz\n\ndecision if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(context.Background(), files); err == nil || !strings.Contains(err.Error(), "broken.rego:") {
		t.Fatalf("err %v, want file:line", err)
	}
	// A policy may not reach the network from the decision path.
	bad := append(repoPolicies(t), File{Name: "net.rego", Content: []byte("package tenantgate.extra\n\nx := http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1/\"})\n")})
	if _, err := Compile(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "http.send") {
		t.Fatalf("http.send allowed: %v", err)
	}
}

func TestTablesValidate(t *testing.T) {
	p, err := Compile(context.Background(), repoPolicies(t))
	if err != nil {
		t.Fatal(err)
	}
	tb := *p.Tables()
	if err := tb.validate(); err != nil {
		t.Fatal(err)
	}
	broken := tb
	broken.Permissions = map[string]map[string]string{}
	for k, v := range tb.Permissions {
		broken.Permissions[k] = v
	}
	delete(broken.Permissions, "invoices")
	if err := broken.validate(); err == nil || !strings.Contains(err.Error(), "invoices") {
		t.Errorf("a missing row must be an error: %v", err)
	}
	if !p.IsResource("protected-computers") || p.IsResource("computers") {
		t.Error("catalog routing")
	}
}

func TestDeterministic(t *testing.T) {
	p, err := Compile(context.Background(), repoPolicies(t))
	if err != nil {
		t.Fatal(err)
	}
	if ok, b := p.Deterministic(); !ok {
		t.Fatalf("the shipped policy calls %s", b)
	}
	for _, expr := range []string{
		`{"allowed": time.now_ns() > 0, "status": 200, "reason": "allowed"}`,
		`{"allowed": true, "status": 200, "reason": "allowed", "headers": {"x-r": sprintf("%d", [rand.intn("x", 10)])}}`,
	} {
		p := withDecision(t, expr)
		if ok, b := p.Deterministic(); ok || b == "" {
			t.Errorf("%s: deterministic %v %q", expr, ok, b)
		}
	}
}

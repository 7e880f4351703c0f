package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestAdminExplainEndpoints: /v1/explain, /v1/access and /v1/who-can answer
// on the admin address when mounted, with the commands' JSON, and never on
// the decision address; without them mounted the admin address has none.
func TestAdminExplainEndpoints(t *testing.T) {
	h := launch(t, serveOpts{config: func(c *Config) {
		c.AdminAddr = "127.0.0.1:0"
		c.AdminHandlers = ExplainHandlers(c.Engine)
	}})
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(base, path string, q url.Values) (int, map[string]any) {
		t.Helper()
		resp, err := client.Get("http://" + base + path + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return resp.StatusCode, v
	}
	explainQ := url.Values{"user": {"bob@contoso.example"}, "path": {"/api/v1/customers/contoso/locations/branch-1/vbr-jobs"}}
	code, v := get(h.adminAddr, "/v1/explain", explainQ)
	if code != 200 || v["reason"] != "location_forbidden" || len(v["rows"].([]any)) == 0 {
		t.Errorf("/v1/explain: %d %v", code, v)
	}
	code, v = get(h.adminAddr, "/v1/access", url.Values{"user": {"bob@contoso.example"}})
	if code != 200 || v["user"] != "bob@contoso.example" || len(v["cells"].([]any)) == 0 {
		t.Errorf("/v1/access: %d %v", code, v)
	}
	code, v = get(h.adminAddr, "/v1/who-can", url.Values{"method": {"DELETE"}, "path": {"/api/v1/customers/contoso/users/alice@contoso.example"}})
	if code != 200 || len(v["allowed"].([]any)) != 2 {
		t.Errorf("/v1/who-can: %d %v", code, v)
	}
	if code, v = get(h.adminAddr, "/v1/access", url.Values{"user": {"nobody@x"}}); code != 400 {
		t.Errorf("unknown user: %d %v", code, v)
	}
	if code, _ = get(h.adminAddr, "/v1/explain", url.Values{}); code != 400 {
		t.Errorf("no query: %d", code)
	}
	for _, p := range []string{"/v1/explain", "/v1/access", "/v1/who-can"} {
		if code, _ := get(h.httpAddr, p, explainQ); code != 404 {
			t.Errorf("%s on the decision address: %d, want 404", p, code)
		}
	}
}

func TestAdminExplainOffByDefault(t *testing.T) {
	h := launch(t, serveOpts{config: func(c *Config) { c.AdminAddr = "127.0.0.1:0" }})
	resp, err := http.Get("http://" + h.adminAddr + "/v1/explain?user=bob@contoso.example&path=/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/v1/explain without AdminHandlers: %d, want 404", resp.StatusCode)
	}
}

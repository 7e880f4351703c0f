package bundle

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tenantgate/tenantgate/internal/tenant"
)

// The layout bundle build writes is read from the raw data.json, and gives
// exactly the Data the decoded bundle gives; other layouts are not taken.
func TestRawTenantFiles(t *testing.T) {
	customers, _ := json.Marshal(map[string]any{"customers": map[string]any{"a": map[string]any{"type": "reseller", "locations": []any{"x"}}}})
	users, _ := json.Marshal(map[string]any{"users": map[string]any{"u@a": map[string]any{"customer": "a", "role": "company-user", "locations": []any{"x"}}}})
	raw := []byte(`{"tenantgate": {"tenants": {"customers.yaml": ` + string(customers) + `, "users.yaml":` + string(users) + "}}}\n")

	ranges, ok := splitTenants(raw)
	if !ok || len(ranges) != 2 || ranges[0].name != "customers.yaml" || string(raw[ranges[1].start:ranges[1].end]) != string(users) {
		t.Fatalf("split: %v %v", ranges, ok)
	}
	var files []tenant.File
	for _, r := range ranges {
		files = append(files, tenant.File{Name: r.name, Content: raw[r.start:r.end]})
	}
	fromRaw, err := tenant.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := util.UnmarshalJSON(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	dfiles, err := decoder{name: "b"}.tenantFiles(decoded)
	if err != nil {
		t.Fatal(err)
	}
	fromDecoded, err := tenant.Load(dfiles)
	if err != nil {
		t.Fatal(err)
	}
	fromRaw.Digest, fromDecoded.Digest = "", ""
	if !reflect.DeepEqual(fromRaw, fromDecoded) {
		t.Errorf("the raw and the decoded data differ:\n%+v\n%+v", fromRaw, fromDecoded)
	}

	for _, bad := range []string{
		`{}`,
		`{"tenantgate": {"tenants": {}}}`,
		`{"other": 1, "tenantgate": {"tenants": {"a.yaml": {}}}}`,
		`{"tenantgate": {"tenants": {"a.yaml": {}}, "extra": {}}}`,
		`{"tenantgate": {"tenants": {"a.yaml": []}}}`,
		`{"tenantgate": {"tenants": {"a.yaml": {}, "a.yaml": {}}}}`,
		`{"tenantgate": {"tenants": {"a\u0041.yaml": {}}}}`,
		`{"tenantgate": {"tenants": {"a.yaml": {"users": {"x": "}"}}}}} x`,
	} {
		if r, ok := splitTenants([]byte(bad)); ok {
			t.Errorf("split %s: %v", bad, r)
		}
	}
	roots := []string{"tenantgate/tenants/a.yaml"}
	if withinRoots(&roots, "tenantgate/tenants/b.yaml") || !withinRoots(&roots, "tenantgate/tenants/a.yaml") || !withinRoots(nil, "x") {
		t.Error("withinRoots")
	}
}

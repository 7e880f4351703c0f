package tenantgen_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/extauthz"
	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// testSizes are the sizes the tests generate: the large one is left to the
// benchmarks, which is where its cost belongs.
var testSizes = []tenantgen.Size{tenantgen.Small, tenantgen.Medium}

func TestGeneratedDataIsValidAndRealistic(t *testing.T) {
	for _, size := range testSizes {
		t.Run(size.Name, func(t *testing.T) {
			d, err := tenantgen.Generate(size, tenantgen.DefaultSeed)
			if err != nil {
				t.Fatal(err)
			}
			files := d.Files()
			if len(files) < 3 {
				t.Errorf("got %d files, want the data split over several", len(files))
			}
			data, err := tenant.Load(files)
			if err != nil {
				t.Fatalf("generated data does not load: %v", err)
			}
			if len(data.Customers) != size.Customers || len(data.Users) != size.Users {
				t.Fatalf("loaded %d customers and %d users, want %d and %d",
					len(data.Customers), len(data.Users), size.Customers, size.Users)
			}

			types := map[string]int{}
			var disabledCustomers, withLocations, deepest int
			for _, c := range data.Customers {
				types[c.Type]++
				deepest = max(deepest, len(c.Lineage))
				if c.Disabled {
					disabledCustomers++
				}
				if len(c.Locations) > 0 {
					withLocations++
				}
			}
			roles := map[string]int{}
			var disabledUsers, limited, withComputers, belowDisabled int
			for _, u := range data.Users {
				roles[u.Role]++
				if u.Disabled {
					disabledUsers++
				}
				if len(u.Locations) > 0 {
					limited++
				}
				if len(u.Computers) > 0 {
					withComputers++
				}
				if len(data.Customers[u.Customer].Suspended) > 0 {
					belowDisabled++
				}
			}
			for _, typ := range tenant.Types {
				if types[typ] == 0 {
					t.Errorf("no customer of type %s", typ)
				}
			}
			for _, role := range tenant.Roles {
				if roles[role] == 0 {
					t.Errorf("no user with role %s", role)
				}
			}
			checks := []struct {
				what string
				n    int
			}{
				{"disabled customers", disabledCustomers},
				{"customers with locations", withLocations},
				{"disabled users", disabledUsers},
				{"location-limited users", limited},
				{"subtenants with computers", withComputers},
				{"users below a disabled customer", belowDisabled},
			}
			for _, c := range checks {
				if c.n == 0 {
					t.Errorf("no %s", c.what)
				}
			}
			if disabledCustomers > size.Customers/50 || disabledUsers > size.Users/25 {
				t.Errorf("%d disabled customers and %d disabled users: want a few", disabledCustomers, disabledUsers)
			}
			if deepest < 4 {
				t.Errorf("deepest lineage is %d, want a tree at least 4 deep", deepest)
			}
			if types[tenant.TypeEndCustomer] <= types[tenant.TypeReseller] || types[tenant.TypeReseller] <= types[tenant.TypeDistributor] {
				t.Errorf("types %v: want the tree to widen towards the end-customers", types)
			}
		})
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := tenantgen.Generate(tenantgen.Small, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tenantgen.Generate(tenantgen.Small, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two datasets from the same seed differ")
	}
	c, err := tenantgen.Generate(tenantgen.Small, 8)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a.Requests, c.Requests) {
		t.Error("two seeds gave the same request mix")
	}
}

// TestRequestMixDecidesAsExpected decides every generated request with the
// real engine and the repo's policies: each must get the decision and reason
// the generator expects, and about 70% must be allowed.
func TestRequestMixDecidesAsExpected(t *testing.T) {
	ctx := context.Background()
	for _, size := range testSizes {
		t.Run(size.Name, func(t *testing.T) {
			d, err := tenantgen.Shared(size)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := d.WriteDir(dir); err != nil {
				t.Fatal(err)
			}
			// Through the directory, as the server reads it.
			snap, err := engine.Build(ctx, engine.Dirs{Data: dir, Policies: "../../../policies"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Requests) != tenantgen.RequestCount {
				t.Fatalf("got %d requests, want %d", len(d.Requests), tenantgen.RequestCount)
			}
			seen := map[tenantgen.Request]bool{}
			reasons := map[string]int{}
			allowed, wrong := 0, 0
			for _, r := range d.Requests {
				key := tenantgen.Request{User: r.User, Method: r.Method, Path: r.Path}
				if seen[key] {
					t.Errorf("request %+v appears twice", key)
				}
				seen[key] = true
				res, err := snap.DecideAs(ctx, r.User, &engine.Request{Method: r.Method, Path: r.Path})
				if err != nil {
					t.Fatalf("%+v: %v", r, err)
				}
				reasons[res.Reason]++
				if res.Allowed {
					allowed++
				}
				if res.Allowed != r.Allow || res.Reason != r.Reason {
					wrong++
					if wrong <= 10 {
						t.Errorf("%s %s as %q: got allowed=%v %s, generator expects allowed=%v %s",
							r.Method, r.Path, r.User, res.Allowed, res.Reason, r.Allow, r.Reason)
					}
				}
			}
			if wrong > 0 {
				t.Errorf("%d of %d requests decided otherwise than expected", wrong, len(d.Requests))
			}
			ratio := float64(allowed) / float64(len(d.Requests))
			if ratio < 0.6 || ratio > 0.8 {
				t.Errorf("%.1f%% allowed, want 60-80%%", 100*ratio)
			}
			if got := d.Allowed(); got != ratio {
				t.Errorf("Allowed() = %.3f, decided %.3f", got, ratio)
			}
			// Every reason of the decision table but internal_error.
			for _, want := range []string{"allowed", "bad_path", "unauthenticated", "unknown_user", "user_disabled",
				"customer_disabled", "method_not_allowed", "no_route", "outside_tenant", "module_unavailable",
				"role_forbids", "location_forbidden", "computer_forbidden"} {
				if reasons[want] == 0 {
					t.Errorf("no request decided %s; got %v", want, reasons)
				}
			}
			if n := len(d.Subjects()); n < 200 {
				t.Errorf("the mix has %d distinct users, want many", n)
			}
		})
	}
}

// TestCheckRequestsOverExtAuthz sends the Envoy-shaped requests, with real
// HS256 tokens, through the gRPC front end as the benchmarks do: the token
// must be found and verified, so each gets the expected answer.
func TestCheckRequestsOverExtAuthz(t *testing.T) {
	ctx := context.Background()
	d, err := tenantgen.Shared(tenantgen.Small)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := d.WriteDir(filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("test-secret-0123456789abcdef012345\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Options{
		Source:   engine.Dirs{Data: filepath.Join(dir, "data"), Policies: "../../../policies"},
		Identity: &identity.Config{HS256SecretFile: secret, Leeway: time.Minute},
		Timeout:  10 * time.Second, // -race on a loaded machine
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	srv := extauthz.New(eng)
	tokens := map[string]string{}
	for _, sub := range d.Subjects() {
		if tokens[sub], err = identity.SignHS256(secret, sub, "", "", time.Hour, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	wrong := 0
	for i, r := range d.Requests {
		req := r.CheckRequest(tokens[r.User], i)
		h := req.GetAttributes().GetRequest().GetHttp()
		if h.GetHeaders()[":path"] != r.Path || h.GetId() == "" || req.GetAttributes().GetSource().GetAddress() == nil {
			t.Fatalf("request %d is not shaped as Envoy sends it: %v", i, req)
		}
		resp, err := srv.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		allowed := resp.GetStatus().GetCode() == 0
		reason := resp.GetStatus().GetMessage()
		if allowed {
			reason = "allowed"
		}
		if allowed != r.Allow || reason != r.Reason {
			if wrong++; wrong <= 10 {
				t.Errorf("%s %s as %q: got %s, want %s", r.Method, r.Path, r.User, reason, r.Reason)
			}
		}
		if allowed && !strings.Contains(resp.GetOkResponse().String(), r.User) {
			t.Errorf("allow for %q carries no x-tenantgate-user: %v", r.User, resp.GetOkResponse())
		}
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		name    string
		want    tenantgen.Size
		wantErr bool
	}{
		{"small", tenantgen.Small, false},
		{"medium", tenantgen.Medium, false},
		{"large", tenantgen.Large, false},
		{"huge", tenantgen.Size{}, true},
		{"", tenantgen.Size{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tenantgen.SizeByName(tt.name)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("SizeByName(%q) = %+v, %v", tt.name, got, err)
			}
		})
	}
	if s := tenantgen.Large; s.Customers != 20_000 || s.Users != 200_000 {
		t.Errorf("large is %+v, want 20,000 customers and 200,000 users", s)
	}
}

func TestGenerateRefusesTinySizes(t *testing.T) {
	tests := []tenantgen.Size{
		{Name: "few-customers", Customers: 5, Users: 100},
		{Name: "few-users", Customers: 100, Users: 150},
		{Name: "negative", Customers: -1, Users: -1},
	}
	for _, size := range tests {
		t.Run(size.Name, func(t *testing.T) {
			if _, err := tenantgen.Generate(size, 1); err == nil {
				t.Errorf("Generate(%+v) did not fail", size)
			}
		})
	}
}

// Every layout holds the same tree: the same customers and users load from
// each, and the split one has a file per root customer.
func TestLayoutsLoadTheSameData(t *testing.T) {
	d, err := tenantgen.Generate(tenantgen.Medium, tenantgen.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	var want *tenant.Data
	for _, l := range tenantgen.Layouts() {
		t.Run(string(l), func(t *testing.T) {
			files, err := d.LayoutFiles(l)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tenant.Load(files)
			if err != nil {
				t.Fatalf("%s layout does not load: %v", l, err)
			}
			if l == tenantgen.LayoutSplit {
				roots := 0
				for _, c := range d.Customers {
					if c.Parent == "" {
						roots++
					}
				}
				if len(files) != roots || roots < 10 {
					t.Errorf("split into %d files, want one per root customer (%d)", len(files), roots)
				}
			}
			if want == nil {
				want = got
				return
			}
			if len(got.Customers) != len(want.Customers) || len(got.Users) != len(want.Users) {
				t.Fatalf("loaded %d customers, %d users; want %d, %d", len(got.Customers), len(got.Users), len(want.Customers), len(want.Users))
			}
			for id, c := range want.Customers {
				g := got.Customers[id]
				if g == nil || !reflect.DeepEqual(g.Lineage, c.Lineage) || g.Disabled != c.Disabled || !reflect.DeepEqual(g.Locations, c.Locations) {
					t.Fatalf("customer %s differs: got %+v, want %+v", id, g, c)
				}
			}
			for id, u := range want.Users {
				g := got.Users[id]
				if g == nil || g.Customer != u.Customer || g.Role != u.Role || !reflect.DeepEqual(g.Locations, u.Locations) || !reflect.DeepEqual(g.Computers, u.Computers) {
					t.Fatalf("user %s differs: got %+v, want %+v", id, g, u)
				}
			}
		})
	}
	if _, err := d.LayoutFiles("nope"); err == nil {
		t.Error("an unknown layout was accepted")
	}
}

func TestBenchSizes(t *testing.T) {
	t.Setenv(tenantgen.BenchSizesEnv, "")
	if s, err := tenantgen.BenchSizes(); err != nil || !reflect.DeepEqual(s, tenantgen.Sizes()) {
		t.Errorf("unset: %v %v", s, err)
	}
	t.Setenv(tenantgen.BenchSizesEnv, "small, xl")
	if s, err := tenantgen.BenchSizes(); err != nil || !reflect.DeepEqual(s, []tenantgen.Size{tenantgen.Small, tenantgen.XL}) {
		t.Errorf("small,xl: %v %v", s, err)
	}
	t.Setenv(tenantgen.BenchSizesEnv, "huge")
	if _, err := tenantgen.BenchSizes(); err == nil {
		t.Error("an unknown size was taken")
	}
	if s := tenantgen.XL; s.Customers != 100_000 || s.Users != 1_000_000 {
		t.Errorf("xl is %+v", s)
	}
}

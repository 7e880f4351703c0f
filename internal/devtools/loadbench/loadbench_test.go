package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
)

func TestParseStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 250 and 50 ticks.
	rest := " S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0 100 2000000 500"
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "1234 (tenantgate)" + rest, 3 * time.Second, false},
		{"name with spaces and parens", "1234 (a b) (c))" + rest, 3 * time.Second, false},
		{"no name", "1234 tenantgate S 1 2", 0, true},
		{"truncated", "1234 (x) S 1 2 3", 0, true},
		{"not a number", "1234 (x) S 1 2 3 4 5 6 7 8 9 10 abc 50 0", 0, true},
		{"negative", "1234 (x) S 1 2 3 4 5 6 7 8 9 10 -1 50 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatCPU = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\ttenantgate\nVmPeak:\t  900000 kB\nVmHWM:\t   204800 kB\nVmRSS:\t  102400 kB\n"
	tests := []struct {
		name, status string
		want         int64
		wantErr      bool
	}{
		{"present", status, 200 << 20, false},
		{"absent", "Name:\tx\nVmRSS:\t1 kB\n", 0, true},
		{"bad unit", "VmHWM:\t12 MB\n", 0, true},
		{"bad value", "VmHWM:\tlots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatusKB([]byte(tt.status), "VmHWM:")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseStatusKB = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestOwnProcessCounters reads this test process's own counters, which are
// certainly there and non-zero.
func TestOwnProcessCounters(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("the load benchmark needs Linux's /proc: %v", err)
	}
	pid := os.Getpid()
	if _, err := cpuTime(pid); err != nil {
		t.Error(err)
	}
	if rss, err := peakRSS(pid); err != nil || rss <= 0 {
		t.Errorf("peakRSS = %d, %v", rss, err)
	}
}

func TestGHZReport(t *testing.T) {
	report := `{"count": 1010, "total": 2000000000, "rps": 505.0,
		"statusCodeDistribution": {"OK": 1000, "Unavailable": 10},
		"errorDistribution": {
			"rpc error: code = Unavailable desc = error reading from server: read tcp 127.0.0.1:1->127.0.0.1:2: use of closed network connection": 6,
			"rpc error: code = Unavailable desc = connection refused": 4},
		"latencyDistribution": [{"percentage": 50, "latency": 400000}, {"percentage": 99, "latency": 3000000}],
		"details": [{"latency": 1, "status": "OK"}]}`
	r, err := parseGHZReport([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	if r.answered() != 1000 {
		t.Errorf("answered = %d, want 1000", r.answered())
	}
	tests := []struct {
		name        string
		concurrency int
		want        int
	}{
		// The calls cut by ghz's own teardown are not errors, up to one per
		// concurrent call; a refused connection always is.
		{"teardown within concurrency", 16, 4},
		{"more teardown than calls in flight", 2, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.errors(tt.concurrency); got != tt.want {
				t.Errorf("errors(%d) = %d, want %d", tt.concurrency, got, tt.want)
			}
		})
	}
	if p, err := r.percentile(99); err != nil || p != 3*time.Millisecond {
		t.Errorf("p99 = %v, %v", p, err)
	}
	if _, err := r.percentile(90); err == nil {
		t.Error("a percentile ghz did not report did not fail")
	}
	for _, bad := range []string{`{"count": 5, "statusCodeDistribution": {"Unavailable": 5}}`, `{`, `[]`} {
		if _, err := parseGHZReport([]byte(bad)); err == nil {
			t.Errorf("parseGHZReport(%s) did not fail", bad)
		}
	}
}

// TestDataFileAndProtoset: the files ghz is given must decode into exactly
// the requests, and the protoset must describe the Check method.
func TestDataFileAndProtoset(t *testing.T) {
	d, err := tenantgen.Generate(tenantgen.Small, tenantgen.DefaultSeed)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := writeSecret(secret); err != nil {
		t.Fatal(err)
	}
	reqs, err := checkRequests(d, secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != len(d.Requests) {
		t.Fatalf("%d check requests for %d requests", len(reqs), len(d.Requests))
	}
	for i, r := range d.Requests {
		h := reqs[i].GetAttributes().GetRequest().GetHttp()
		auth, has := h.GetHeaders()["authorization"]
		if h.GetMethod() != r.Method || h.GetPath() != r.Path || has != (r.User != "") || (has && !strings.HasPrefix(auth, "Bearer ey")) {
			t.Fatalf("request %d: %v does not match %+v", i, h, r)
		}
	}

	data := filepath.Join(dir, "requests.json")
	if err := writeDataFile(data, reqs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("data file is not a JSON array: %v", err)
	}
	if len(raw) != len(reqs) {
		t.Fatalf("data file has %d messages, want %d", len(raw), len(reqs))
	}
	for i, m := range raw {
		var got authv3.CheckRequest
		if err := protojson.Unmarshal(m, &got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !proto.Equal(&got, reqs[i]) {
			t.Fatalf("message %d decodes to %v, want %v", i, &got, reqs[i])
		}
	}

	ps := filepath.Join(dir, "x.protoset")
	if err := writeProtoset(ps); err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(ps); err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	// NewFiles fails when a file comes before one it imports or one is
	// missing: the order ghz needs.
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("protoset does not resolve: %v", err)
	}
	desc, err := files.FindDescriptorByName("envoy.service.auth.v3.Authorization")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(checkMethod, "."+string(desc.Name())+".Check") {
		t.Errorf("checkMethod %q does not name the service %s", checkMethod, desc.FullName())
	}
}

func TestBenchfmt(t *testing.T) {
	in := `goos: linux
pkg: github.com/tenantgate/tenantgate/internal/engine
BenchmarkBuild/size=large-2         	       1	1741879168 ns/op	        62.89 live-MiB	483284480 B/op	 7743290 allocs/op
pkg: github.com/tenantgate/tenantgate/internal/extauthz
BenchmarkCheck/size=small/mix=allow/cache=on-2         	  473709	      3216 ns/op	    1104 B/op	      13 allocs/op
BenchmarkCheck/size=small/mix=deny-2 some log line
BenchmarkCheck/size=small/mix=allow/cache=on-2         	  473709	      3000 ns/op	    1104 B/op	      13 allocs/op
BenchmarkCheck/size=small/mix=allow/cache=on-2         	  473709	      9000 ns/op	    1104 B/op	      13 allocs/op
PASS
`
	var out strings.Builder
	if err := benchfmt(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := `| benchmark | time/op | live-MiB | B/op | allocs/op |
|---|--:|--:|--:|--:|
| engine.Build/size=large | 1.74 s | 62.9 | 483,284,480 | 7,743,290 |
| extauthz.Check/size=small/mix=allow/cache=on | 3.22 µs | | 1,104 | 13 |
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if err := benchfmt(strings.NewReader("FAIL\n"), &out); err == nil {
		t.Error("no results did not fail")
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{humanDuration(950), "950 ns"},
		{humanDuration(999_700), "1000 µs"},
		{humanDuration(12_345), "12.3 µs"},
		{humanDuration(141_168_943), "141 ms"},
		{humanDuration(2_129_510_591), "2.13 s"},
		{thousands(0), "0"},
		{thousands(999), "999"},
		{thousands(1234567.4), "1,234,567"},
		{thousands(-1234), "-1,234"},
		{ratio(3, 2), "1.50×"},
		{ratio(3, 0), "–"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{"defaults", nil, false},
		{"sizes", []string{"-sizes", "medium, large"}, false},
		{"unknown size", []string{"-sizes", "huge"}, true},
		{"short run", []string{"-duration", "10ms"}, true},
		{"no rounds", []string{"-rounds", "0"}, true},
		{"stray argument", []string{"extra"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errs strings.Builder
			_, err := parseConfig(tt.args, &errs)
			if (err != nil) != tt.wantErr {
				t.Errorf("parseConfig(%q) = %v, want error %v", tt.args, err, tt.wantErr)
			}
		})
	}
}

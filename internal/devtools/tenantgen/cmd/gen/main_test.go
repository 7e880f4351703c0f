package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

func TestWritesALoadableDataset(t *testing.T) {
	dir := t.TempDir()
	out, reqs := filepath.Join(dir, "data"), filepath.Join(dir, "requests.json")
	var stdout strings.Builder
	if err := run([]string{"-size", "small", "-out", out, "-requests", reqs}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	d, err := tenant.LoadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Customers) != tenantgen.Small.Customers || len(d.Users) != tenantgen.Small.Users {
		t.Errorf("%d customers, %d users", len(d.Customers), len(d.Users))
	}
	b, err := os.ReadFile(reqs)
	if err != nil {
		t.Fatal(err)
	}
	var rs []tenantgen.Request
	if err := json.Unmarshal(b, &rs); err != nil || len(rs) != tenantgen.RequestCount {
		t.Errorf("requests file: %d requests, %v", len(rs), err)
	}
	if !strings.Contains(stdout.String(), "500 users") {
		t.Errorf("summary %q", stdout.String())
	}
}

func TestRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no out", []string{"-size", "small"}},
		{"unknown size", []string{"-size", "huge", "-out", "x"}},
		{"stray argument", []string{"-out", "x", "y"}},
		{"unknown flag", []string{"-nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for i, a := range tt.args {
				if a == "x" {
					tt.args[i] = filepath.Join(dir, "x")
				}
			}
			if err := run(tt.args, io.Discard, io.Discard); err == nil {
				t.Errorf("run(%q) did not fail", tt.args)
			}
		})
	}
}

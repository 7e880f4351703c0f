package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// benchSource writes the generated dataset of a size (generated once per
// process) and an HS256 secret into a temporary directory, and returns the
// source and identity config a server would be started with.
func benchSource(b *testing.B, size tenantgen.Size) (Dirs, *identity.Config) {
	b.Helper()
	d, err := tenantgen.Shared(size)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	if err := d.WriteDir(data); err != nil {
		b.Fatal(err)
	}
	secret := filepath.Join(dir, "hs256.secret")
	if err := os.WriteFile(secret, []byte("bench-secret-0123456789abcdef0123\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return Dirs{Data: data, Policies: "../../policies"}, &identity.Config{HS256SecretFile: secret, Leeway: time.Minute}
}

// BenchmarkBuild measures a whole snapshot build: read and parse the YAML,
// validate and index it, compile the policies, load the keys. live-MiB is the
// heap one snapshot keeps alive.
func BenchmarkBuild(b *testing.B) {
	ctx := context.Background()
	for _, size := range tenantgen.Sizes() {
		b.Run("size="+size.Name, func(b *testing.B) {
			src, ident := benchSource(b, size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(ctx, src, ident); err != nil {
					b.Fatal(err)
				}
			}
			// Outside the timed loop: b.Loop has stopped the timer.
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s, err := Build(ctx, src, ident)
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(s)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "live-MiB")
		})
	}
}

// BenchmarkReload measures Engine.Reload on an engine that already serves
// the same data: what an operator's edit costs, old snapshot included.
func BenchmarkReload(b *testing.B) {
	ctx := context.Background()
	for _, size := range tenantgen.Sizes() {
		b.Run("size="+size.Name, func(b *testing.B) {
			src, ident := benchSource(b, size)
			e := New(Options{Source: src, Identity: ident, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err := e.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := e.Reload(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

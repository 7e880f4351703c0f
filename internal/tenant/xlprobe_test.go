package tenant_test

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

func TestXLProbe(t *testing.T) {
	if os.Getenv("XLPROBE") == "" {
		t.Skip()
	}
	d, _ := tenantgen.Generate(tenantgen.XL, tenantgen.DefaultSeed)
	files, _ := d.LayoutFiles(tenantgen.Layout(os.Getenv("XLPROBE")))
	d = nil
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	c := tenant.NewCache()
	start := time.Now()
	data, err := c.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("load %v, retained %d MiB", el, (ms.HeapAlloc-base)>>20)
	f, _ := os.Create("/tmp/heap.out")
	pprof.WriteHeapProfile(f)
	f.Close()
	// one file edited
	files[len(files)/2].Content = append(files[len(files)/2].Content, "# x\n"...)
	start = time.Now()
	data2, err := c.Load(files)
	t.Logf("reload %v", time.Since(start))
	runtime.KeepAlive(data)
	runtime.KeepAlive(data2)
}

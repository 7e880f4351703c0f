package bundle

import (
	"archive/tar"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBundleSizeBound: a small file that inflates past the bound is refused
// before OPA's reader would hold it in memory (a gzip bomb needs no key).
func TestBundleSizeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bomb.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	const limit = 4 << 20 // MaxBytes in production; smaller keeps the test fast
	size := int64(limit) + 1
	if err := tw.WriteHeader(&tar.Header{Name: "data.json", Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for written := int64(0); written < size; {
		n := min(int64(len(zeros)), size-written)
		if _, err := tw.Write(zeros[:n]); err != nil {
			t.Fatal(err)
		}
		written += n
	}
	tw.Close()
	gz.Close()
	f.Close()
	if st, _ := os.Stat(path); st.Size() > 64<<10 {
		t.Fatalf("test bomb is %d bytes; want a small file", st.Size())
	}
	if err := checkSize(path, limit); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("checkSize: %v", err)
	}
	if err := checkSize(path, 2*limit); err != nil {
		t.Fatalf("within the bound: %v", err)
	}
	s := &Source{opts: Options{Path: path, InsecureSkipVerification: true}, maxBytes: limit}
	if _, err := s.read(nil, true); err == nil || !strings.Contains(err.Error(), "refused before reading") {
		t.Fatalf("read: %v", err)
	}
}

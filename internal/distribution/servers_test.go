package distribution

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"
)

// binary finds a Debian-installed server (sbin is not on a user's PATH); a
// missing one fails the test: `make test-deps` installs it.
func binary(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s is not installed: run `make test-deps` (it installs the Debian package %s with apt-get)", name, pkg)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs a server until the test ends and waits for addr to
// answer HTTP.
func startProcess(t *testing.T, addr string, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, _ := os.Create(filepath.Join(t.TempDir(), "out.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 10*time.Second, bin+" did not start on "+addr, func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

// writeAtomic replaces a file by rename, as a publisher should.
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestNginxServesBundleFiles: Debian's nginx serves the bundle as a static
// file with its own ETag; OPA's downloader sends If-None-Match and nginx
// answers 304 while the file is unchanged, so the bundle is downloaded once
// per revision; a new file is activated within the polling max delay.
func TestNginxServesBundleFiles(t *testing.T) {
	nginx := binary(t, "nginx", "nginx")
	m, key := testMaker(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "www", "bundles")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	// Run as root (a container), nginx's workers would switch to nobody,
	// who cannot read the test's 0700 temp directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	conf := user + fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp;
    proxy_temp_path %[1]s/tmp;
    fastcgi_temp_path %[1]s/tmp;
    uwsgi_temp_path %[1]s/tmp;
    scgi_temp_path %[1]s/tmp;
    server {
        listen %[2]s;
        root %[1]s/www;
        location /bundles/ { default_type application/gzip; etag on; }
    }
}
`, dir, addr)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(root, "tenantgate.tar.gz")
	writeAtomic(t, bundlePath, mustBundle(t, m.Signed, "n1"))
	startProcess(t, addr, nginx, "-p", dir, "-c", confPath, "-g", "daemon off;")

	sc := startSidecar(t, signedConfig("http://"+addr, t.TempDir(), key.Public, 0, ""))
	waitFor(t, 10*time.Second, "n1 not activated from nginx", func() bool { return sc.revision() == "n1" })
	// Three more polls (min 1 s, max 2 s apart): each must be a 304.
	reqs := sc.status().LastSuccessfulRequest
	for range 3 {
		waitFor(t, 5*time.Second, "no further poll", func() bool { return sc.status().LastSuccessfulRequest.After(reqs) })
		reqs = sc.status().LastSuccessfulRequest
	}
	if n := sc.status().Downloads; n != 1 {
		t.Fatalf("nginx: %d downloads for one revision; want 1 (the later polls 304 Not Modified)", n)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "access.log"))
	if !strings.Contains(string(log), `" 304 `) {
		t.Errorf("nginx's access log shows no 304:\n%s", log)
	}
	writeAtomic(t, bundlePath, mustBundle(t, m.Signed, "n2"))
	took := waitFor(t, 30*time.Second, "n2 not activated after the file changed (polling)", func() bool { return sc.revision() == "n2" })
	t.Logf("plain polling through nginx: n2 served %v after the file changed (max_delay_seconds 2)", took)
}

// TestOCIRegistry: the bundle is pushed to Debian's docker-registry (the
// CNCF distribution registry) as OPA's docs push it with oras, and pulled by
// OPA's OCI downloader with the OCI configuration from OPA's docs.
func TestOCIRegistry(t *testing.T) {
	reg := binary(t, "docker-registry", "docker-registry")
	m, key := testMaker(t)
	dir := t.TempDir()
	addr := freePort(t)
	conf := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s/storage
http:
  addr: %s
log:
  level: error
`, dir, addr)
	confPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, addr, reg, "serve", confPath)
	ref := addr + "/someorg/policy-hello:1.0.0"
	push(t, ref, mustBundle(t, m.Signed, "o1"))

	cfg := ociDocsConfig(addr) + `    signing:
      keyid: ` + fleet_KeyID + `
keys:
  ` + fleet_KeyID + `:
    algorithm: RS256
    key: |
` + indent(key.Public, 6) + `
persistence_directory: ` + t.TempDir() + "\n"
	sc := startSidecar(t, cfg)
	waitFor(t, 20*time.Second, "o1 not activated from the OCI registry", func() bool { return sc.revision() == "o1" })
	if st := sc.status(); !strings.HasPrefix(st.Source, "oci://") {
		t.Errorf("source %q, want oci://...", st.Source)
	}
}

// push pushes a bundle as OPA's docs do with `oras push ... --config
// config.json:application/vnd.oci.image.config.v1+json
// bundle.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip`, with oras-go.
func push(t *testing.T, ref string, tgz []byte) {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	layer, err := oras.PushBytes(ctx, store, ocispec.MediaTypeImageLayerGzip, tgz)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := oras.PushBytes(ctx, store, ocispec.MediaTypeImageConfig, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}, ConfigDescriptor: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]
	if err := store.Tag(ctx, manifest, tag); err != nil {
		t.Fatal(err)
	}
	repo, err := remote.NewRepository(strings.TrimSuffix(ref, ":"+tag))
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	if _, err := oras.Copy(ctx, store, tag, repo, tag, oras.DefaultCopyOptions); err != nil {
		t.Fatalf("push to docker-registry: %v", err)
	}
}

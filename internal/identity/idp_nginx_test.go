package identity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/tenantgate/tenantgate/internal/testkit/syncbuf"
	"github.com/tenantgate/tenantgate/internal/testkit/tlstest"
)

// idp is an identity provider as far as tenantgate sees one: Debian's nginx
// over TLS (a test CA) serving a discovery document and a JWKS from files,
// Keycloak's paths. Rotation is done as a provider does it: by replacing
// the JWKS file.
type idp struct {
	t        *testing.T
	dir, www string
	addr     string // 127.0.0.1:port
	issuer   string // https://127.0.0.1:port/realms/portal
	jwksURL  string
	caFile   string
	maxAge   int // Cache-Control max-age of the JWKS, seconds
	bin      string
	cmd      *exec.Cmd
	done     chan struct{}
	out      *syncbuf.Buffer
}

const (
	idpRealm    = "/realms/portal"
	idpCertPath = idpRealm + "/protocol/openid-connect/certs"
)

// startIDP starts nginx serving keys, with Cache-Control max-age=maxAge on
// the JWKS.
func startIDP(t *testing.T, maxAge int, keys ...jwk.Key) *idp {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "tenantgate test IdP CA")
	pair := ca.Server(t, "localhost")
	f := tlstest.Write(t, dir, pair, nil)
	p := &idp{t: t, dir: dir, www: filepath.Join(dir, "www"), bin: bin, maxAge: maxAge,
		caFile: filepath.Join(dir, "ca.pem")}
	tlstest.WriteFile(t, p.caFile, ca.PEM)
	if err := os.MkdirAll(filepath.Join(p.www, filepath.FromSlash(idpRealm), ".well-known"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p.www, filepath.FromSlash(filepath.Dir(idpCertPath))), 0o755); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		port := freeLoopbackPort(t)
		p.addr = "127.0.0.1:" + strconv.Itoa(port)
		p.issuer = "https://" + p.addr + idpRealm
		p.jwksURL = "https://" + p.addr + idpCertPath
		p.writeFile(idpRealm+"/.well-known/openid-configuration", mustJSON(t, map[string]any{
			"issuer":                                p.issuer,
			"jwks_uri":                              p.jwksURL,
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		}))
		p.publish(keys...)
		conf := fmt.Sprintf(`worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    open_file_cache off;
    server {
        listen %[2]s ssl;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        root %[5]s;
        default_type application/json;
        location = %[6]s { add_header Cache-Control "max-age=%[7]d"; }
    }
}
`, dir, p.addr, f.Cert, f.Key, p.www, idpCertPath, maxAge)
		confFile := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		err := p.start()
		if err == nil {
			break
		}
		if attempt < 2 && strings.Contains(p.out.String()+p.errorLog(), "in use") {
			continue
		}
		t.Fatalf("nginx did not start: %v\n%s%s", err, p.out, p.errorLog())
	}
	t.Cleanup(p.stop)
	return p
}

func (p *idp) start() error {
	p.out = &syncbuf.Buffer{}
	p.cmd = exec.Command(p.bin, "-p", p.dir, "-c", filepath.Join(p.dir, "nginx.conf"), "-g", "daemon off;")
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(p.cmd, p.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("nginx exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return err
		}
	}
}

// stop stops nginx (the provider is down); a no-op once stopped.
func (p *idp) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *idp) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
	return string(b)
}

// writeFile replaces a served file by rename, as a deployment would.
func (p *idp) writeFile(urlPath string, b []byte) {
	p.t.Helper()
	dst := filepath.Join(p.www, filepath.FromSlash(urlPath))
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		p.t.Fatal(err)
	}
}

// publish replaces the JWKS with keys.
func (p *idp) publish(keys ...jwk.Key) {
	p.t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			p.t.Fatal(err)
		}
	}
	p.writeFile(idpCertPath, mustJSON(p.t, set))
}

// jwksFetches counts the JWKS requests nginx logged.
func (p *idp) jwksFetches() int {
	b, _ := os.ReadFile(filepath.Join(p.dir, "access.log"))
	return bytes.Count(b, []byte("GET "+idpCertPath+" "))
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// nginxBinary finds nginx on PATH or in the sbin directories (not on a
// normal user's PATH on Debian). Missing, the test fails: `make test-deps`
// installs it, and nothing is skipped.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, "nginx")
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatal("nginx is not installed: run `make test-deps` (it installs nginx with apt-get)")
	return ""
}

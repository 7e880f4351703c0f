package tlsconfig_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/testkit/tlstest"
	"github.com/tenantgate/tenantgate/internal/tlsconfig"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestFilesValidate(t *testing.T) {
	tests := []struct {
		name    string
		files   tlsconfig.Files
		wantErr string
	}{
		{"none", tlsconfig.Files{}, ""},
		{"cert and key", tlsconfig.Files{CertFile: "c", KeyFile: "k"}, ""},
		{"cert key and client CA", tlsconfig.Files{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}, ""},
		{"cert only", tlsconfig.Files{CertFile: "c"}, "needed together"},
		{"key only", tlsconfig.Files{KeyFile: "k"}, "needed together"},
		{"client CA only", tlsconfig.Files{ClientCAFile: "ca"}, "client CA file needs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.files.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestNewRejects checks that every kind of bad file is an error naming it.
func TestNewRejects(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	good := ca.Server(t, "server")
	other := ca.Server(t, "other")
	expired := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "old"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	future := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "future"},
		NotBefore: time.Now().Add(24 * time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	ca2 := tlstest.NewCA(t, "second CA")
	// A bundle whose second block is corrupt: pem.Decode would skip it.
	corrupt := append(append([]byte{}, ca.PEM...), []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")...)
	corrupt = append(corrupt, ca2.PEM...)

	tests := []struct {
		name            string
		cert, key, caPE []byte // nil: the file is not written
		useCA           bool
		wantFile        string // "cert", "key" or "ca": the file the error must name
		wantErr         string
	}{
		{name: "missing cert", key: good.KeyPEM, wantFile: "cert", wantErr: "no such file"},
		{name: "missing key", cert: good.CertPEM, wantFile: "key", wantErr: "no such file"},
		{name: "garbage cert", cert: []byte("hello"), key: good.KeyPEM, wantFile: "cert", wantErr: "certificate"},
		{name: "key of another cert", cert: good.CertPEM, key: other.KeyPEM, wantFile: "key", wantErr: "does not match"},
		{name: "expired", cert: expired.CertPEM, key: expired.KeyPEM, wantFile: "cert", wantErr: "expired"},
		{name: "not yet valid", cert: future.CertPEM, key: future.KeyPEM, wantFile: "cert", wantErr: "not valid before"},
		{name: "missing client CA", cert: good.CertPEM, key: good.KeyPEM, useCA: true, wantFile: "ca", wantErr: "no such file"},
		{name: "empty client CA", cert: good.CertPEM, key: good.KeyPEM, caPE: []byte("\n"), useCA: true, wantFile: "ca", wantErr: "no certificates"},
		{name: "key in client CA", cert: good.CertPEM, key: good.KeyPEM, caPE: good.KeyPEM, useCA: true, wantFile: "ca", wantErr: `"PRIVATE KEY"`},
		{name: "corrupt block in client CA", cert: good.CertPEM, key: good.KeyPEM, caPE: corrupt, useCA: true, wantFile: "ca", wantErr: "do not decode"},
		{name: "half-written client CA", cert: good.CertPEM, key: good.KeyPEM, caPE: ca.PEM[:len(ca.PEM)/2], useCA: true, wantFile: "ca", wantErr: "do not decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := tlsconfig.Files{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
			if tc.useCA {
				files.ClientCAFile = filepath.Join(dir, "ca.crt")
			}
			for path, b := range map[string][]byte{files.CertFile: tc.cert, files.KeyFile: tc.key, files.ClientCAFile: tc.caPE} {
				if b != nil {
					tlstest.WriteFile(t, path, b)
				}
			}
			_, err := tlsconfig.New(files, quiet())
			if err == nil {
				t.Fatal("New accepted bad files")
			}
			want := map[string]string{"cert": files.CertFile, "key": files.KeyFile, "ca": files.ClientCAFile}[tc.wantFile]
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q: want it to name %s and contain %q", err, want, tc.wantErr)
			}
		})
	}
}

// serveTLS accepts connections with cfg; each one that completes the
// handshake gets "ok\n" and is closed.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok\n"))
				}
			}()
		}
	}()
	return lis.Addr().String()
}

// dial connects and reads the server's "ok": in TLS 1.3 a refused client
// certificate shows on the first read, after the client's handshake is done.
func dial(addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, err
	}
	if string(b) != "ok\n" {
		return nil, io.ErrUnexpectedEOF
	}
	st := c.ConnectionState()
	return &st, nil
}

func TestHandshakes(t *testing.T) {
	serverCA := tlstest.NewCA(t, "server CA")
	clientCA := tlstest.NewCA(t, "client CA")
	otherCA := tlstest.NewCA(t, "other CA")
	goodClient := clientCA.Client(t, "envoy")
	strangerClient := otherCA.Client(t, "stranger")
	dir := t.TempDir()
	serverPair := serverCA.Server(t, "tenantgate")
	notAClient := clientCA.Server(t, "server usage only") // right CA, wrong extended key usage

	tests := []struct {
		name       string
		mutual     bool
		version    uint16 // the only version the client offers; 0: its defaults
		clientCert *tlstest.Pair
		wantOK     bool
	}{
		{name: "tls no client cert", wantOK: true},
		{name: "tls client cert ignored", clientCert: strangerClient, wantOK: true},
		{name: "tls 1.1 refused", version: tls.VersionTLS11, wantOK: false},
		{name: "mtls good client cert", mutual: true, clientCert: goodClient, wantOK: true},
		{name: "mtls no client cert refused", mutual: true, wantOK: false},
		{name: "mtls cert from another CA refused", mutual: true, clientCert: strangerClient, wantOK: false},
		{name: "mtls cert without client usage refused", mutual: true, clientCert: notAClient, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ca *tlstest.CA
			if tc.mutual {
				ca = clientCA
			}
			f := tlstest.Write(t, mkdir(t, filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))), serverPair, ca)
			r, err := tlsconfig.New(tlsconfig.Files{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.CA}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			addr := serveTLS(t, r.ServerConfig("h2"))
			cfg := &tls.Config{RootCAs: serverCA.Pool(), ServerName: "localhost", NextProtos: []string{"h2"}}
			if tc.version != 0 {
				cfg.MinVersion, cfg.MaxVersion = tc.version, tc.version
			}
			if tc.clientCert != nil {
				cfg.Certificates = []tls.Certificate{tc.clientCert.TLS}
			}
			st, err := dial(addr, cfg)
			if tc.wantOK != (err == nil) {
				t.Fatalf("handshake error %v, want ok=%v", err, tc.wantOK)
			}
			if err == nil && st.NegotiatedProtocol != "h2" {
				t.Errorf("ALPN %q, want h2", st.NegotiatedProtocol)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReload rotates the files under a running listener.
func TestReload(t *testing.T) {
	ca := tlstest.NewCA(t, "CA")
	dir := mkdir(t, filepath.Join(t.TempDir(), "certs"))
	first := ca.Server(t, "first")
	f := tlstest.Write(t, dir, first, nil)
	var logs bytes.Buffer
	r, err := tlsconfig.New(tlsconfig.Files{CertFile: f.Cert, KeyFile: f.Key}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.ServerConfig("h2"))
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	presented := func() string {
		t.Helper()
		st, err := dial(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}

	second := ca.Server(t, "second")
	steps := []struct {
		name      string
		cert, key []byte
		wantErr   string // "" : Reload succeeds
		want      string // the CN presented afterwards
	}{
		{name: "unchanged", cert: first.CertPEM, key: first.KeyPEM, want: "first"},
		{name: "rotated", cert: second.CertPEM, key: second.KeyPEM, want: "second"},
		{name: "cert written before its key", cert: first.CertPEM, key: second.KeyPEM, wantErr: "does not match", want: "second"},
		{name: "truncated cert", cert: first.CertPEM[:40], key: first.KeyPEM, wantErr: f.Cert, want: "second"},
		{name: "recovered", cert: first.CertPEM, key: first.KeyPEM, want: "first"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			tlstest.WriteFile(t, f.Cert, st.cert)
			tlstest.WriteFile(t, f.Key, st.key)
			err := r.Reload()
			if st.wantErr == "" && err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
				t.Fatalf("Reload error %v, want one containing %q", err, st.wantErr)
			}
			if got := presented(); got != st.want {
				t.Fatalf("presented %q, want %q", got, st.want)
			}
			if got := r.Certificate().Leaf.Subject.CommonName; got != st.want {
				t.Fatalf("Certificate() is %q, want %q", got, st.want)
			}
		})
	}
	if !strings.Contains(logs.String(), "TLS reload failed") || !strings.Contains(logs.String(), f.Cert) {
		t.Errorf("the failed reload was not logged with the file name:\n%s", logs.String())
	}
}

// TestResumptionAfterCARotation: a client whose CA was removed must not get
// back in by resuming a session from before the rotation.
func TestResumptionAfterCARotation(t *testing.T) {
	serverCA := tlstest.NewCA(t, "server CA")
	oldCA := tlstest.NewCA(t, "old client CA")
	newCA := tlstest.NewCA(t, "new client CA")
	dir := mkdir(t, filepath.Join(t.TempDir(), "certs"))
	f := tlstest.Write(t, dir, serverCA.Server(t, "tenantgate"), oldCA)
	r, err := tlsconfig.New(tlsconfig.Files{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.CA}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.ServerConfig())
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			tlstest.WriteFile(t, f.CA, oldCA.PEM)
			if err := r.Reload(); err != nil {
				t.Fatal(err)
			}
			client := &tls.Config{
				RootCAs: serverCA.Pool(), ServerName: "localhost", MaxVersion: version, MinVersion: version,
				Certificates:       []tls.Certificate{oldCA.Client(t, "envoy").TLS},
				ClientSessionCache: tls.NewLRUClientSessionCache(4),
			}
			if _, err := dial(addr, client); err != nil {
				t.Fatalf("first connection: %v", err)
			}
			st, err := dial(addr, client)
			if err != nil || !st.DidResume {
				t.Fatalf("second connection did not resume (err %v): the test would prove nothing", err)
			}
			tlstest.WriteFile(t, f.CA, newCA.PEM)
			if err := r.Reload(); err != nil {
				t.Fatal(err)
			}
			if st, err := dial(addr, client); err == nil {
				t.Fatalf("a client of the removed CA got in after the rotation (resumed: %v)", st.DidResume)
			}
		})
	}
}

package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// checkURL accepts https://, and http:// only to a loopback host (a
// provider on the same machine or pod) or when insecure is set: keys
// fetched in clear text can be swapped by anyone on the path, and then any
// token is accepted.
func checkURL(what, raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, raw, err)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s %q: want an absolute https:// URL with a host, no user info and no fragment", what, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if insecure || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s %q: plain http to a host that is not loopback: keys fetched in clear text can be replaced on the way; use https://, or --jwks-insecure-http for a test setup", what, raw)
	default:
		return fmt.Errorf("%s %q: the scheme must be https (or http to loopback)", what, raw)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newHTTPClient is the client for the discovery document and the JWKS:
// the CA file's roots (or the system's), TLS 1.2 at least, a timeout per
// request, and redirects only to URLs checkURL accepts.
func newHTTPClient(cfg RemoteConfig) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("JWKS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("JWKS CA file %s: no PEM certificate in it", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{
		Transport: tr,
		Timeout:   cfg.FetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			return checkURL("redirect", req.URL.String(), cfg.Insecure)
		},
	}, nil
}

// discover reads the issuer's OpenID Provider configuration (OpenID Connect
// Discovery 1.0, section 4) and returns its jwks_uri. The document's issuer
// must be the configured one exactly (section 4.3): a mismatch means the URL
// is not that issuer's, and its keys would verify someone else's tokens.
// Retried with a backoff until ctx ends: at start-up the provider may
// still be coming up.
func discover(ctx context.Context, cfg RemoteConfig, client *http.Client) (string, error) {
	u := strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
	backoff := 250 * time.Millisecond
	var last error // the latest attempt's error that the deadline did not cut short
	for {
		jwksURI, err := discoverOnce(ctx, cfg, client, u)
		if err == nil {
			return jwksURI, nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return "", err
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		cfg.Logger.Warn("OIDC discovery failed; retrying", "url", u, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("no answer within the start-up timeout: %w", last)
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// permanentError is a discovery answer that retrying will not change.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func discoverOnce(ctx context.Context, cfg RemoteConfig, client *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", permanentError{fmt.Errorf("OIDC discovery %s: %w", u, err)}
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("OIDC discovery %s: HTTP status %d, want 200", u, res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBody+1))
	if err != nil {
		return "", fmt.Errorf("OIDC discovery %s: %w", u, err)
	}
	if len(b) > maxJWKSBody {
		return "", fmt.Errorf("OIDC discovery %s: the document is larger than %d bytes", u, maxJWKSBody)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("OIDC discovery %s: %w", u, err)
	}
	switch {
	case doc.Issuer != cfg.Issuer:
		return "", permanentError{fmt.Errorf("OIDC discovery %s: the document's issuer is %q, not %q (OpenID Connect Discovery 1.0 section 4.3 requires them equal; check --oidc-issuer, including a trailing slash)", u, doc.Issuer, cfg.Issuer)}
	case doc.JWKSURI == "":
		return "", permanentError{fmt.Errorf("OIDC discovery %s: no jwks_uri", u)}
	}
	if err := checkURL("jwks_uri of "+u, doc.JWKSURI, cfg.Insecure); err != nil {
		return "", permanentError{err}
	}
	return doc.JWKSURI, nil
}

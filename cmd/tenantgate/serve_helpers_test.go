package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"
)

// unixClient speaks HTTP to the socket at sock, whatever the URL's host.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 5 * time.Second}
}

// waitServing waits until an in-process serve (its run's result arrives on
// done) answers /readyz 200, or has exited: then exited is true and err is
// what run returned. Neither within 30 s fails the test.
func waitServing(t *testing.T, client *http.Client, done <-chan error) (exited bool, err error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			return true, err
		default:
		}
		if resp, err := client.Get("http://tenantgate/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return false, nil
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("serve neither became ready nor exited within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

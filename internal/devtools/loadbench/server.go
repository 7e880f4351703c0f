package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// server is one server process under test, started pinned to the server CPUs.
type server struct {
	name string
	addr string // gRPC host:port
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the exit, once done is closed
	log  string
}

// startServer starts bin with args, its output going to logPath.
func startServer(ctx context.Context, name, addr, cpus, logPath, bin string, args ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := pinned(ctx, cpus, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// On cancel (Ctrl-C), a graceful stop; a server that does not stop in
	// time is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		s.err = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// exited returns an error naming the log when the process has already ended.
func (s *server) exited() error {
	select {
	case <-s.done:
		return fmt.Errorf("%s exited (%v); see %s", s.name, s.err, s.log)
	default:
		return nil
	}
}

// stop asks the server to stop and waits for it.
func (s *server) stop() {
	if s.exited() != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// waitReady polls ready until it reports true, the process exits or timeout
// passes.
func (s *server) waitReady(ctx context.Context, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		if err := s.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; see %s", s.name, timeout, s.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// httpReady reports whether url answers 200 (tenantgate's /readyz: a snapshot
// is loaded and it serves).
func httpReady(url string) func() bool {
	c := &http.Client{Timeout: time.Second}
	return func() bool {
		resp, err := c.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// tcpReady reports whether addr accepts connections (the no-op server has
// no health endpoint: it is ready when it listens).
func tcpReady(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process could take it before the server binds it; the server
// then fails to start, loudly.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

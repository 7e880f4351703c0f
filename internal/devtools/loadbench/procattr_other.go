//go:build !linux

package main

import "os/exec"

// setParentDeath has no equivalent outside Linux; the benchmark reads /proc
// and needs Linux anyway.
func setParentDeath(*exec.Cmd) {}

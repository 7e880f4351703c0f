package main

import (
	"os/exec"
	"syscall"
)

// setParentDeath kills a server when the driver dies without stopping it
// (a kill -9, a crash): a leftover server would hold a port and a core.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

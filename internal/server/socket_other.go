//go:build !linux

package server

import "os"

// chmodSocket sets the mode of the socket file just bound at path. Outside
// Linux there is no portable way not to follow a symlink here: keep sockets
// in a directory only tenantgate can write to.
func chmodSocket(path string, mode os.FileMode) error { return os.Chmod(path, mode) }

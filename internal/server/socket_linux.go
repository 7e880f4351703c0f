package server

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// chmodSocket sets the mode of the socket file just bound at path without
// following a symlink. The socket's directory may be shared (an emptyDir
// with the proxy), and a path swapped for a symlink between bind and chmod
// must not make chmod change the file the link points to. O_PATH|O_NOFOLLOW
// opens the directory entry itself; a chmod through /proc/self/fd then
// changes that very inode (as glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does).
func chmodSocket(path string, mode os.FileMode) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s is no longer the socket just bound (mode %#o): not changing its mode", path, st.Mode&unix.S_IFMT)
	}
	err = os.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
	if errors.Is(err, os.ErrNotExist) {
		// No /proc mounted: the entry was a socket a moment ago, which is
		// the best that can be checked without it.
		err = os.Chmod(path, mode)
	}
	return err
}

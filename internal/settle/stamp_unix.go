//go:build unix

package settle

import (
	"io/fs"
	"strconv"
	"syscall"
)

// appendIdentity adds the device and inode: a file renamed over another, or
// a symlink swapped to a new target, is a new inode even when its size and
// modification time happen to match.
func appendIdentity(b []byte, fi fs.FileInfo) []byte {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return b
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(st.Dev), 10)
	b = append(b, ' ')
	return strconv.AppendUint(b, uint64(st.Ino), 10)
}

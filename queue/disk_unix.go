//go:build linux || darwin

package queue

import "syscall"

// freeSpace returns the bytes available to this process on the file system
// holding path, and false if path cannot be asked.
func freeSpace(path string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}

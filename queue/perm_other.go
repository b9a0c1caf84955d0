//go:build !unix

package queue

import "io/fs"

// privateDir leaves access control to the system: Unix permission bits do
// not describe it here.
func privateDir(string) (fs.FileMode, error) { return 0, nil }

// privateFiles does nothing on systems without Unix permission bits.
func privateFiles(string) error { return nil }

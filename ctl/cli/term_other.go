//go:build !linux

package cli

import (
	"io"
	"os"
)

// isTerminal says whether w is a character device, which is what a
// terminal is; /dev/null counts too, which costs nothing but escapes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

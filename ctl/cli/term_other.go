//go:build !linux

package cli

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/warren-edge/warren/daemons/api"
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

var errNoRawMode = errors.New("a terminal for the command (-t) is made on Linux only")

func makeRaw(*os.File) (func(), error) { return nil, errNoRawMode }

func noEcho(*os.File) (func(), error) { return nil, errNoRawMode }

func termSize(*os.File) (api.TermSize, error) { return api.TermSize{}, errNoRawMode }

func watchResize(context.Context, *os.File) <-chan api.TermSize { return nil }

// Package procs is what a daemon does to its own process: here, letting
// go of the pages of the binary that only start-up used.
package procs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"syscall"
)

// ReleaseStartupPages unmaps the pages of the running executable's
// read-only segments (its code and constant data) from this process, so
// that only those it uses from now on come back into its resident set.
//
// Why: Warren ships one binary, and every daemon runs the package
// initialisers of every other daemon's code (containerd's API, Raft, the
// protobuf registries) once at start-up. The kernel maps each page that
// is touched with its neighbours (fault-around, 64 KiB), so a daemon kept
// 15-20 MB of the binary's pages mapped, most never used again, and
// mapped code is what the kernel reclaims last. Unmapped, the pages stay
// in the page cache, shared and clean, and the kernel may drop those no
// daemon uses when memory is short. The pages a daemon does use come back
// at their next use, as minor faults from the page cache.
//
// Call it once the daemon has started. Only the executable's private
// mappings without write permission are touched: its data and everything
// else keep their pages.
func ReleaseStartupPages() (released int64, err error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	// The executable is the file that holds this function's code.
	pc := reflect.ValueOf(ReleaseStartupPages).Pointer()
	for _, m := range imageSegments(maps, pc) {
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); e != 0 {
			return released, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, e)
		}
		released += int64(m.end - m.start)
	}
	if released == 0 {
		return 0, fmt.Errorf("no read-only mapping of the executable in /proc/self/maps")
	}
	return released, nil
}

// mapping is a line of /proc/self/maps.
type mapping struct {
	start, end uintptr
	perms      string
	file       string // device:inode; "" for anonymous memory
}

// imageSegments are the private read-only mappings of the file whose
// mapping holds pc.
func imageSegments(maps []byte, pc uintptr) []mapping {
	var all []mapping
	file := ""
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		m, ok := parseMapping(sc.Text())
		if !ok {
			continue
		}
		all = append(all, m)
		if m.start <= pc && pc < m.end {
			file = m.file
		}
	}
	var out []mapping
	for _, m := range all {
		if file != "" && m.file == file && m.perms[0] == 'r' && m.perms[1] == '-' && m.perms[3] == 'p' {
			out = append(out, m)
		}
	}
	return out
}

// parseMapping parses a line of /proc/self/maps:
//
//	00400000-0115a000 r-xp 00000000 fe:00 9980674   /usr/bin/warren
func parseMapping(line string) (mapping, bool) {
	f := bytes.Fields([]byte(line))
	if len(f) < 5 || len(f[1]) != 4 {
		return mapping{}, false
	}
	lo, hi, found := bytes.Cut(f[0], []byte("-"))
	if !found {
		return mapping{}, false
	}
	s, err1 := strconv.ParseUint(string(lo), 16, 64)
	e, err2 := strconv.ParseUint(string(hi), 16, 64)
	if err1 != nil || err2 != nil || e <= s {
		return mapping{}, false
	}
	m := mapping{start: uintptr(s), end: uintptr(e), perms: string(f[1])}
	if ino := string(f[4]); ino != "0" {
		m.file = string(f[3]) + ":" + ino
	}
	return m, true
}

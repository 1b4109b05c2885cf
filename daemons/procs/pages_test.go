package procs

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestImageSegments(t *testing.T) {
	maps := []byte(`00400000-0115a000 r-xp 00000000 fe:00 9980674                            /usr/bin/warren
0115a000-0202a000 r--p 00d5a000 fe:00 9980674                            /usr/bin/warren
0202a000-020d3000 rw-p 01c2a000 fe:00 9980674                            /usr/bin/warren
020d3000-04121000 rw-p 00000000 00:00 0
504c2c00000-504c3400000 rw-p 00000000 00:00 0
7f3b53600000-7f3b536a0000 r-xp 00000000 fe:00 123                        /usr/lib/libc.so.6
7f3b536a0000-7f3b536b0000 r--p 00000000 fe:01 9980674                    /other/fs/same/inode
7f3b536b0000-7f3b536c0000 r--s 00000000 fe:00 9980674                    /usr/bin/warren
garbage
7ffd1000-7ffd0000 r--p 00000000 fe:00 9980674 /usr/bin/warren
`)
	got := imageSegments(maps, 0x401234)
	want := []mapping{
		{0x400000, 0x115a000, "r-xp", "fe:00:9980674"},
		{0x115a000, 0x202a000, "r--p", "fe:00:9980674"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("imageSegments, pc in the code:\n got %+v\nwant %+v", got, want)
	}
	// pc in a library: its code, not the executable's.
	if got := imageSegments(maps, 0x7f3b53600010); len(got) != 1 || got[0].file != "fe:00:123" {
		t.Errorf("imageSegments, pc in libc: %+v", got)
	}
	// pc in anonymous memory, or nowhere: nothing.
	for _, pc := range []uintptr{0x504c2c00010, 0x10} {
		if got := imageSegments(maps, pc); len(got) != 0 {
			t.Errorf("imageSegments, pc %x: %+v, want none", pc, got)
		}
	}
}

// TestReleaseStartupPages releases this test binary's pages: its
// resident file pages fall, and it goes on running (the pages come back
// from the page cache).
func TestReleaseStartupPages(t *testing.T) {
	before := rssFileKB(t)
	n, err := ReleaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFileKB(t)
	if n <= 0 {
		t.Fatalf("released %d bytes: found none of the executable's read-only mappings", n)
	}
	runtime.GC()
	if after >= before {
		t.Errorf("resident file pages %d kB before, %d kB after releasing %d bytes", before, after, n)
	}
	t.Logf("RssFile %d kB → %d kB (released %d MB of mappings)", before, after, n>>20)
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

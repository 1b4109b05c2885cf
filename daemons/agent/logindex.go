package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The log index. A container's output reaches its log file as the shim
// wrote it, with no time on the lines, so ?since=T cannot be read from
// the file. The agent samples each log file's length in the second after
// it was written (logLoop) and keeps, next to ID.log in ID.log.idx, the
// checkpoints where the file had grown: a checkpoint (T, Off) says the
// file was Off bytes long at T, so the bytes before Off were written at or
// before T and those from Off on after T. Its T is the previous sample
// or, when the file had been quiet since, just before the write event
// that ended the quiet (logEventSlack). ?since=T starts at the first
// checkpoint at or after T, at the next line start: the lines shown were
// all written after T, and a line written in the second before that
// checkpoint may be missed. That is the precision: the sampling period,
// one second (more while the agent is down: a file that grew then has no
// checkpoint for it).
//
// The index is appended to (one line "UNIXNANO OFFSET" per checkpoint)
// and read back when the agent restarts. At most one checkpoint a
// second is taken, only for files that grew; checkpoints older than a
// day are thinned to one a minute. A rotation (ID.log copied to ID.log.1
// and truncated) moves the index along to ID.log.1.idx and starts a new
// one at offset 0.

type checkpoint struct {
	T   time.Time
	Off int64
}

const (
	idxSuffix = ".idx"
	// thinAfter: checkpoints older than this keep one a thinEvery.
	thinAfter = 24 * time.Hour
	thinEvery = time.Minute
	// thinSlack is how many checkpoints an index gains between thinnings
	// (an hour of a file growing every second).
	thinSlack = 3600
)

// sinceOffset is where a file of size bytes, with the checkpoints cps
// (oldest first), holds the first byte written at or after since: the
// offset of the first checkpoint at or after since; 0 when since is before
// every checkpoint (the bytes before the first have no known time, and
// the first lines of a task are the ones not to lose); size when none is
// that late. The offset may fall inside a line: see lineStart.
func sinceOffset(cps []checkpoint, since time.Time, size int64) int64 {
	if len(cps) == 0 || since.Before(cps[0].T) {
		return 0
	}
	for _, c := range cps {
		if !c.T.Before(since) {
			return min(c.Off, size)
		}
	}
	return size
}

// thin keeps every checkpoint taken within thinAfter of now and, of the
// older ones, the first of each thinEvery.
func thin(cps []checkpoint, now time.Time) []checkpoint {
	out := make([]checkpoint, 0, len(cps))
	var bucket time.Time
	for i, c := range cps {
		if now.Sub(c.T) < thinAfter {
			return append(out, cps[i:]...)
		}
		if b := c.T.Truncate(thinEvery); len(out) == 0 || !b.Equal(bucket) {
			bucket = b
			out = append(out, c)
		}
	}
	return out
}

// lineStart is off, or the start of the next line when off falls inside
// one (that line began before its checkpoint); the end of f when no line
// starts after off.
func lineStart(f io.ReaderAt, off, size int64) (int64, error) {
	if off <= 0 {
		return 0, nil
	}
	buf := make([]byte, 8<<10)
	pos := off - 1 // the byte before off: a newline means off starts a line
	for pos < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-pos)], pos)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
		if err != nil && err != io.EOF {
			return 0, err
		}
		if n == 0 {
			break
		}
		pos += int64(n)
	}
	return size, nil
}

// logIndex is the index of one log file.
type logIndex struct {
	cps      []checkpoint // as in the .idx file
	thinAt   int          // thin when cps grows past this
	lastT    time.Time    // the last sample: the file was lastSize long at lastT
	lastSize int64
}

// logIndexer keeps the indexes of the task log files.
type logIndexer struct {
	now   func() time.Time
	mu    sync.Mutex
	files map[string]*logIndex // by log file path
	// ticked is when the previous sample was taken (zero before the
	// first): a file not there then was empty then.
	ticked time.Time
}

func newLogIndexer(now func() time.Time) *logIndexer {
	return &logIndexer{now: now, files: map[string]*logIndex{}}
}

// loadIndex reads the index of the log file at path; a torn last line
// (the agent stopped while appending) is skipped.
func loadIndex(path string) ([]checkpoint, error) {
	f, err := os.Open(path + idxSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cps []checkpoint
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ns, off, ok := strings.Cut(sc.Text(), " ")
		t, err1 := strconv.ParseInt(ns, 10, 64)
		o, err2 := strconv.ParseInt(off, 10, 64)
		if !ok || err1 != nil || err2 != nil || o < 0 {
			continue
		}
		cps = append(cps, checkpoint{T: time.Unix(0, t), Off: o})
	}
	return cps, sc.Err()
}

// appendIndex appends cps to the index file name.
func appendIndex(name string, cps ...checkpoint) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, c := range cps {
		fmt.Fprintf(&b, "%d %d\n", c.T.UnixNano(), c.Off)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeIndex replaces the index of path with cps.
func writeIndex(path string, cps []checkpoint) error {
	tmp := path + idxSuffix + ".tmp"
	os.Remove(tmp)
	if err := appendIndex(tmp, cps...); err != nil {
		return err
	}
	return os.Rename(tmp, path+idxSuffix)
}

// sample records the length of each log file in paths (all of them:
// a file not in paths is forgotten until it comes back). quiet holds, by
// path, times until which files kept their size (sampleOne).
func (ix *logIndexer) sample(paths []string, quiet map[string]time.Time) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	now := ix.now()
	var errs []error
	for _, p := range paths {
		if err := ix.sampleOne(p, now, quiet[p]); err != nil {
			errs = append(errs, fmt.Errorf("agent: log index of %s: %w", p, err))
		}
	}
	ix.ticked = now
	return errors.Join(errs...)
}

// sampleOne samples the file at p. quiet, when not zero, is a time until
// which the file kept the size it had at the previous sample (logLoop
// learns it from the file's first write event since then): the
// checkpoint of its growth is taken then, not at the previous sample,
// which is long before when the task was quiet and nothing woke the loop.
func (ix *logIndexer) sampleOne(p string, now, quiet time.Time) error {
	fi, err := os.Stat(p)
	if err != nil {
		return nil // gone since the glob
	}
	size := fi.Size()
	li, ok := ix.files[p]
	if !ok {
		cps, err := loadIndex(p)
		if err != nil {
			return err
		}
		li = &logIndex{cps: cps, thinAt: len(cps) + thinSlack, lastT: now, lastSize: size}
		ix.files[p] = li
		if len(cps) == 0 && !ix.ticked.IsZero() {
			// A new file: it was not there at the previous sample.
			li.lastT, li.lastSize = ix.ticked, 0
		} else {
			return nil
		}
	}
	if quiet.After(li.lastT) && quiet.Before(now) {
		li.lastT = quiet
	}
	switch {
	case size < li.lastSize:
		// Truncated by someone else than rotate: the old offsets mean
		// nothing now. The bytes there were written after lastT.
		li.cps = []checkpoint{{T: li.lastT, Off: 0}}
		li.thinAt = thinSlack
		if err := writeIndex(p, li.cps); err != nil {
			return err
		}
	case size > li.lastSize:
		c := checkpoint{T: li.lastT, Off: li.lastSize}
		li.cps = append(li.cps, c)
		if err := appendIndex(p+idxSuffix, c); err != nil {
			return err
		}
		if len(li.cps) > li.thinAt {
			li.cps = thin(li.cps, now)
			li.thinAt = len(li.cps) + thinSlack
			if err := writeIndex(p, li.cps); err != nil {
				return err
			}
		}
	}
	li.lastT, li.lastSize = now, size
	return nil
}

// rotate rotates the log file at path when it is over maxBytes (rotate),
// and its index with it: ID.log.1.idx is the index of ID.log.1, and
// ID.log's starts over at offset 0.
func (ix *logIndexer) rotate(path string, maxBytes int64) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	before := ix.now()
	rotated, err := rotate(path, maxBytes)
	if !rotated {
		return err
	}
	if rerr := os.Rename(path+idxSuffix, path+".1"+idxSuffix); errors.Is(rerr, fs.ErrNotExist) {
		os.Remove(path + ".1" + idxSuffix)
	}
	// Every byte ID.log holds now was written after the truncation.
	c := checkpoint{T: before, Off: 0}
	ix.files[path] = &logIndex{cps: []checkpoint{c}, thinAt: thinSlack, lastT: before, lastSize: 0}
	if ierr := writeIndex(path, []checkpoint{c}); ierr != nil && err == nil {
		err = ierr
	}
	return err
}

// forget drops the index of a log file that is being removed.
func (ix *logIndexer) forget(path string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	delete(ix.files, path)
	os.Remove(path + idxSuffix)
	os.Remove(path + ".1" + idxSuffix)
}

// since is where to start reading f, the log file at path, for the
// lines written at or after t: a line start, or the end of f.
func (ix *logIndexer) since(path string, f *os.File, t time.Time) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if t.After(ix.now()) {
		return size, nil
	}
	ix.mu.Lock()
	var cps []checkpoint
	li, ok := ix.files[path]
	if ok {
		cps = append(cps, li.cps...)
		cps = append(cps, checkpoint{T: li.lastT, Off: li.lastSize})
	}
	ix.mu.Unlock()
	if !ok {
		if cps, err = loadIndex(path); err != nil {
			return 0, err
		}
	}
	return lineStart(f, sinceOffset(cps, t, size), size)
}

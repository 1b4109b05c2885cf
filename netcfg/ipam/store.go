package ipam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"

	"github.com/warren-edge/warren/netcfg/atomicfile"
)

// fileVersion is the version of the JSON file format Save writes.
const fileVersion = 1

// file is the JSON form of a Pool.
type file struct {
	Version int    `json:"version"`
	Subnet  string `json:"subnet"`
	// Last is the address handed out most recently, so that a restarted
	// agent keeps going round the subnet instead of starting over.
	Last string `json:"last,omitempty"`
	// Allocations maps each owner to its address.
	Allocations map[string]string `json:"allocations"`
}

// Load reads the pool that Save wrote to path. A missing file is not an
// error: it yields an empty pool (first start of the node). The file must be
// for subnet; an address outside it, a reserved address or an address held
// twice is an error that names the file, so a damaged file is never trusted.
func Load(path string, subnet netip.Prefix) (*Pool, error) {
	p, err := New(subnet)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: load %s: %w", path, err)
	}
	if err := p.decode(data); err != nil {
		return nil, fmt.Errorf("ipam: load %s: %w; repair the file, or move it away to start with an empty pool (running containers then lose their address reservations)", path, err)
	}
	return p, nil
}

func (p *Pool) decode(data []byte) error {
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("not a valid pool file: %w", err)
	}
	if f.Version != fileVersion {
		return fmt.Errorf("file format version %d, this agent reads version %d", f.Version, fileVersion)
	}
	fileSubnet, err := netip.ParsePrefix(f.Subnet)
	if err != nil {
		return fmt.Errorf("bad subnet %q: %w", f.Subnet, err)
	}
	if fileSubnet != p.subnet {
		return fmt.Errorf("file is for subnet %s, but the node's subnet is %s", fileSubnet, p.subnet)
	}
	if f.Last != "" {
		last, err := netip.ParseAddr(f.Last)
		if err != nil {
			return fmt.Errorf("bad last address %q: %w", f.Last, err)
		}
		if !p.contains(last) {
			return fmt.Errorf("last address %s is not an allocatable address of %s", last, p.subnet)
		}
		p.last = last
	}
	for owner, s := range f.Allocations {
		if owner == "" {
			return fmt.Errorf("address %s has an empty owner", s)
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("owner %q: bad address %q: %w", owner, s, err)
		}
		if !p.contains(a) {
			return fmt.Errorf("owner %q: address %s is not an allocatable address of %s (outside the subnet, or its network, gateway or broadcast address)", owner, a, p.subnet)
		}
		if other, dup := p.byAddr[a]; dup {
			first, second := other, owner
			if second < first {
				first, second = second, first
			}
			return fmt.Errorf("address %s is held by both %q and %q", a, first, second)
		}
		p.byOwner[owner] = a
		p.byAddr[a] = owner
	}
	return nil
}

// Save writes the pool to path atomically: it writes a temporary file in the
// same directory, syncs it, renames it over path and syncs the directory, so
// that after a crash path holds either the old or the new pool.
//
// Saves commit as a group: when Save returns nil, path holds every change
// made before it was called, but one write may carry the changes of many
// callers. A caller that finds a write under way waits for it and, if it
// did not carry the caller's changes, writes once more for all who waited.
// So tasks attached at once share their fsyncs instead of queueing for one
// each.
func (p *Pool) Save(path string) error {
	p.mu.Lock()
	want := p.gen
	for p.savedPath != path || p.savedGen < want {
		if p.saving != nil {
			done := p.saving
			p.mu.Unlock()
			<-done
			p.mu.Lock()
			continue
		}
		done := make(chan struct{})
		p.saving = done
		gen, f := p.gen, p.fileLocked()
		p.mu.Unlock()
		err := write(path, f)
		p.mu.Lock()
		p.saving = nil
		close(done)
		if err != nil {
			p.mu.Unlock()
			return err
		}
		p.savedPath, p.savedGen = path, gen
	}
	p.mu.Unlock()
	return nil
}

// write encodes f and writes it to path atomically.
func write(path string, f file) error {
	data, err := marshal(f)
	if err == nil {
		err = atomicfile.Write(path, data, 0o644)
	}
	if err != nil {
		return fmt.Errorf("ipam: save %s: %w", path, err)
	}
	return nil
}

// fileLocked returns the file form of p. Callers hold p.mu.
func (p *Pool) fileLocked() file {
	f := file{
		Version:     fileVersion,
		Subnet:      p.subnet.String(),
		Allocations: make(map[string]string, len(p.byOwner)),
	}
	if p.last.IsValid() {
		f.Last = p.last.String()
	}
	for owner, a := range p.byOwner {
		f.Allocations[owner] = a.String()
	}
	return f
}

// marshal returns f as Save writes it.
func marshal(f file) ([]byte, error) {
	data, err := json.MarshalIndent(f, "", "  ") // map keys are sorted: stable output
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

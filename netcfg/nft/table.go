package nft

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Table is table inet warren in one network namespace: the node's, or one
// given with InNetNS.
type Table struct {
	netnsFd int // 0: the network namespace of the calling thread
}

// applyMu serializes Applies, also of different Tables.
var applyMu sync.Mutex

// Option configures a Table.
type Option func(*Table)

// InNetNS puts the table in the network namespace that fd refers to (an open
// /proc/PID/ns/net or /run/netns/NAME). The caller keeps fd open while it
// uses the Table. Without it, the table is in the network namespace of the
// calling thread, which in a daemon is the node's.
func InNetNS(fd int) Option {
	return func(t *Table) { t.netnsFd = fd }
}

// NewTable returns the table inet warren of a network namespace. It does no
// I/O.
func NewTable(opts ...Option) *Table {
	t := &Table{}
	for _, o := range opts {
		o(t)
	}
	return t
}

// The kernel queues one acknowledgement per message of a batch before Flush
// reads any, and each takes about 1 KiB of the socket's receive buffer
// (skb overhead): with the default buffer (about 200 KiB) a few hundred
// ports overflow it and the answer is lost (ENOBUFS). The buffer is sized
// for the batch, with room to spare.
const (
	bufferPerMessage = 2 << 10
	minBuffer        = 1 << 20
)

func (t *Table) conn(messages int) (*nftables.Conn, error) {
	size := max(minBuffer, messages*bufferPerMessage)
	opts := []nftables.ConnOption{nftables.WithSockOptions(bufferSize(size))}
	if t.netnsFd != 0 {
		opts = append(opts, nftables.WithNetNSFd(t.netnsFd))
	}
	return nftables.New(opts...)
}

// bufferSize sets the socket's buffers to size bytes, beyond
// net.core.rmem_max and wmem_max, which CAP_NET_ADMIN allows.
func bufferSize(size int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		err = raw.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); serr != nil {
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// messages counts the netlink messages Apply sends for rs.
func (rs *Ruleset) messages() int {
	n := 3 + len(rs.Chains) // add, delete, add table
	for _, m := range rs.Maps {
		n += 2 + len(m.Elements)/elementsPerMessage
	}
	for _, c := range rs.Chains {
		n += len(c.Rules)
	}
	return n
}

func (t *Table) table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// Apply builds the ruleset for cfg and makes it the content of table inet
// warren. See ApplyRuleset.
func (t *Table) Apply(cfg Config) error {
	rs, err := Build(cfg)
	if err != nil {
		return err
	}
	return t.ApplyRuleset(rs)
}

// ApplyRuleset replaces table inet warren with rs in one netlink transaction
// (add table, delete table, add table and everything in it): the kernel
// applies all of it or, on any error, none of it, so a failed Apply leaves
// the previous ruleset in place. Connections already translated keep their
// translation (it lives in conntrack, not in the table).
func (t *Table) ApplyRuleset(rs *Ruleset) error {
	// google/nftables numbers sets from a global counter without a lock.
	applyMu.Lock()
	defer applyMu.Unlock()
	c, err := t.conn(rs.messages())
	if err != nil {
		return fmt.Errorf("nft: apply: %w", explain(err))
	}
	table := t.table()
	c.AddTable(table) // so that the delete finds a table even on first use
	c.DelTable(table)
	c.AddTable(table)
	if err := rs.queue(c, table); err != nil {
		return fmt.Errorf("nft: apply: %w", err)
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, syscall.ENOBUFS) {
			return fmt.Errorf("nft: apply table inet %s: the kernel's answer was lost (%w): the new ruleset may or may not be in place; apply again", TableName, err)
		}
		return fmt.Errorf("nft: apply table inet %s: %w; the previous ruleset is unchanged", TableName, explain(err))
	}
	return nil
}

// Remove deletes table inet warren and everything in it. A missing table is
// not an error. No other table is touched.
func (t *Table) Remove() error {
	c, err := t.conn(2)
	if err != nil {
		return fmt.Errorf("nft: remove: %w", explain(err))
	}
	table := t.table()
	c.AddTable(table) // the delete then succeeds whether or not it existed
	c.DelTable(table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: remove table inet %s: %w", TableName, explain(err))
	}
	return nil
}

// explain adds what to do to the errors a user can fix.
func explain(err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w (changing nftables needs root or CAP_NET_ADMIN)", err)
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EOPNOTSUPP):
		return fmt.Errorf("%w (the kernel lacks a feature the ruleset uses: check that it has nf_tables with nft_nat, nft_masq, nft_fib and nft_numgen)", err)
	}
	return err
}

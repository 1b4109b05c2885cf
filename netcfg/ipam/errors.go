package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrFull is matched (errors.Is) by the error Allocate returns when every
// address of the subnet is in use.
var ErrFull = errors.New("ipam: subnet is full")

// FullError says which subnet ran out of addresses.
type FullError struct {
	Subnet netip.Prefix
	InUse  int
}

func (e *FullError) Error() string {
	return fmt.Sprintf("ipam: subnet %s is full (%d addresses in use)", e.Subnet, e.InUse)
}

// Is makes errors.Is(err, ErrFull) true for a *FullError.
func (e *FullError) Is(target error) bool { return target == ErrFull }

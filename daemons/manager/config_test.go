package manager_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/manager"
)

// TestNewRefusesUnusableNodeSubnets: warren manager and warren init both
// start a cluster through New, which refuses node subnets that hold no
// container or do not fit the cluster range before it creates anything.
func TestNewRefusesUnusableNodeSubnets(t *testing.T) {
	tests := []struct {
		cidr    string
		bits    int
		wantErr string
	}{
		{"", 31, "manager: --subnet-bits 31 leaves no address for a container: use 12 to 30 (24 gives 253 containers per node)"},
		{"10.240.0.0/12", 8, "manager: --subnet-bits 8 is larger than --cluster-cidr 10.240.0.0/12: use 12 to 30"},
		{"10.240.0.0/26", 0, "manager: --subnet-bits 24 is larger than --cluster-cidr 10.240.0.0/26: use 26 to 30"},
		{"fd00::/48", 64, `manager: --cluster-cidr "fd00::/48" is not an IPv4 range`},
	}
	for _, tt := range tests {
		dir := filepath.Join(t.TempDir(), "m")
		m, err := manager.New(manager.Config{DataDir: dir, Hostname: "h", ClusterCIDR: tt.cidr, SubnetBits: tt.bits})
		if err == nil {
			m.Close()
			t.Errorf("New(ClusterCIDR %q, SubnetBits %d) started a manager, want %q", tt.cidr, tt.bits, tt.wantErr)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.wantErr) {
			t.Errorf("New(ClusterCIDR %q, SubnetBits %d) = %q, want %q…", tt.cidr, tt.bits, err, tt.wantErr)
		}
		if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New(ClusterCIDR %q, SubnetBits %d) failed but left %s behind (stat: %v)", tt.cidr, tt.bits, dir, err)
		}
	}
}

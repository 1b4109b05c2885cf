package link_test

import (
	"testing"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

func TestMain(m *testing.M) { nstest.Main(m) }

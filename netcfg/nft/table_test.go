package nft

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

// newTable returns a Table in a fresh test namespace.
func newTable(t *testing.T) (*Table, *nstest.NS) {
	t.Helper()
	ns := nstest.New(t)
	return NewTable(InNetNS(int(ns.Handle))), ns
}

// TestApplyMatchesNft checks the netlink conversion against nft itself: for
// every golden case, the table Apply loads lists (nft -j) exactly like the
// table nft -f loads from the golden file. It also checks that nft can list
// what Apply loaded and load that listing again.
func TestApplyMatchesNft(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			tbl, applied := newTable(t)
			if err := tbl.Apply(tc.cfg); err != nil {
				t.Fatalf("Apply(%s): %v", tc.name, err)
			}
			golden, err := os.ReadFile(filepath.Join("testdata", tc.name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			loaded := nstest.New(t)
			if out, err := loaded.RunStdin(string(golden), "nft", "-f", "-"); err != nil {
				t.Fatalf("nft -f %s.golden: %v\n%s", tc.name, err, out)
			}
			got, want := listJSON(t, applied, "inet", TableName), listJSON(t, loaded, "inet", TableName)
			if got != want {
				t.Errorf("Apply(%s) loaded a table that nft lists differently from nft -f of the golden file:\n%s", tc.name, lineDiff(want, got))
			}

			text, err := applied.Run("nft", "list", "table", "inet", TableName)
			if err != nil {
				t.Fatalf("nft list table inet %s after Apply: %v", TableName, err)
			}
			again := nstest.New(t)
			if out, err := again.RunStdin(text, "nft", "-f", "-"); err != nil {
				t.Errorf("nft -f of the listing of the applied table: %v\n%s", err, out)
			}
		})
	}
}

func TestApplyReplacesTheRuleset(t *testing.T) {
	tbl, ns := newTable(t)
	one := Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Port: 8080, Backends: []netip.AddrPort{mustAP("10.88.3.2:80")}}}}
	two := Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: UDP, Port: 9090, Backends: []netip.AddrPort{mustAP("10.88.3.3:90")}}}}
	for _, cfg := range []Config{one, two, two} {
		if err := tbl.Apply(cfg); err != nil {
			t.Fatalf("Apply(%v): %v", cfg.Ports, err)
		}
	}
	out, err := ns.Run("nft", "list", "table", "inet", TableName)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "tcp-8080") || !strings.Contains(out, "chain udp-9090") {
		t.Errorf("after Apply(one), Apply(two), Apply(two), the table is not two's:\n%s", out)
	}
}

func TestApplyFailureKeepsThePreviousRuleset(t *testing.T) {
	tbl, ns := newTable(t)
	cfg := goldenCases()[1].cfg // one port
	if err := tbl.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	before := listJSON(t, ns, "inet", TableName)

	bad, err := Build(goldenCases()[4].cfg) // several backends
	if err != nil {
		t.Fatal(err)
	}
	// A rule that jumps to a chain that does not exist: the kernel refuses
	// the transaction, late, after the table was deleted and remade in it.
	c := bad.Chain(ChainForward)
	c.Rules = append(c.Rules, Rule{Action: ActionJump{Chain: "no-such-chain"}})
	err = tbl.ApplyRuleset(bad)
	if err == nil {
		t.Fatalf("ApplyRuleset with a jump to a missing chain succeeded")
	}
	if !strings.Contains(err.Error(), "nft: apply table inet warren:") || !strings.Contains(err.Error(), "the previous ruleset is unchanged") {
		t.Errorf("ApplyRuleset error %q does not say what failed and that nothing changed", err)
	}
	if after := listJSON(t, ns, "inet", TableName); after != before {
		t.Errorf("a failed Apply changed the table:\n%s", lineDiff(before, after))
	}
}

func TestApplyAndRemoveLeaveOtherTablesAlone(t *testing.T) {
	tbl, ns := newTable(t)
	others := `table inet other {
	chain input {
		type filter hook input priority 0; policy accept;
		tcp dport 22 accept
	}
}
table ip warren {
	chain c {
		counter
	}
}
`
	if out, err := ns.RunStdin(others, "nft", "-f", "-"); err != nil {
		t.Fatalf("create the other tables: %v\n%s", err, out)
	}
	other, ipWarren := listJSON(t, ns, "inet", "other"), listJSON(t, ns, "ip", "warren")

	if err := tbl.Apply(goldenCases()[5].cfg); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Apply(Config{Bridge: "warren0", Subnet: testSubnet}); err != nil {
		t.Fatal(err)
	}
	if got, want := tableNames(t, ns), []string{"inet other", "inet warren", "ip warren"}; !slices.Equal(got, want) {
		t.Errorf("after Apply, tables = %v, want %v", got, want)
	}
	if err := tbl.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := tbl.Remove(); err != nil {
		t.Errorf("Remove of a missing table: %v, want nil", err)
	}
	if got, want := tableNames(t, ns), []string{"inet other", "ip warren"}; !slices.Equal(got, want) {
		t.Errorf("after Remove, tables = %v, want %v", got, want)
	}
	if got := listJSON(t, ns, "inet", "other"); got != other {
		t.Errorf("Apply/Remove changed table inet other:\n%s", lineDiff(other, got))
	}
	if got := listJSON(t, ns, "ip", "warren"); got != ipWarren {
		t.Errorf("Apply/Remove changed table ip warren:\n%s", lineDiff(ipWarren, got))
	}
}

// TestApplyManyPorts guards the socket buffer sizing: the kernel answers
// every message of the batch before Apply reads, and a default-sized buffer
// loses the answers of a few hundred ports.
func TestApplyManyPorts(t *testing.T) {
	tbl, ns := newTable(t)
	cfg := Config{Bridge: "warren0", Subnet: testSubnet, Ports: portsN(4000)}
	if err := tbl.Apply(cfg); err != nil {
		t.Fatalf("Apply(4000 ports, 2 backends each): %v", err)
	}
	out, err := ns.Run("nft", "list", "chains", "inet")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out, "chain tcp-"); got != 4000 {
		t.Errorf("after Apply of 4000 ports, %d port chains, want 4000", got)
	}
	out, err = ns.Run("nft", "list", "map", "inet", TableName, MapPortsAny)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out, ": goto tcp-"); got != 4000 {
		t.Errorf("after Apply of 4000 ports, map %s has %d elements, want 4000", MapPortsAny, got)
	}
}

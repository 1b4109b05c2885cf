package nft

import (
	"testing"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

// BenchmarkApply500Ports measures one Apply of 500 published ports (two
// backends each) in a test namespace that already holds the same table, as
// an agent does on every change: build, convert, one transaction.
func BenchmarkApply500Ports(b *testing.B) {
	ns := nstest.New(b)
	tbl := NewTable(InNetNS(int(ns.Handle)))
	cfg := Config{Bridge: "warren0", Subnet: testSubnet, Ports: portsN(500)}
	if err := tbl.Apply(cfg); err != nil {
		b.Fatalf("Apply: %v", err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := tbl.Apply(cfg); err != nil {
			b.Fatalf("Apply: %v", err)
		}
	}
}

// BenchmarkBuild500Ports measures the pure part: Config to Ruleset.
func BenchmarkBuild500Ports(b *testing.B) {
	cfg := Config{Bridge: "warren0", Subnet: testSubnet, Ports: portsN(500)}
	for b.Loop() {
		if _, err := Build(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

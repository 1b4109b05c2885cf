// Package cluster runs Warren clusters of real processes on hosts made of
// network namespaces, for the multi-host tests of issue 5 and for the HA
// figures of make bench (qa/bench imports it).
//
// Each host is a network namespace with one veth to a bridge that lives in
// another namespace, the LAN. Addresses (10.78.0.0/24 by default) exist
// only inside those namespaces; the machine's own network is not touched.
//
//	   LAN namespace wc<id>-lan: bridge br0, nft table "bridge wcut"
//	 ┌─────────┬─────────┬─────────┬─────────┬─────────┐
//	vm1       vm2       vm3       vw1       vw2       vclient     (veths)
//	 │         │         │         │         │         │
//	m1 .11    m2 .12    m3 .13    w1 .14    w2 .15    client      (one
//	manager   manager   manager   manager   manager   the test's  namespace
//	                              (worker)  (worker)  TLS clients each)
//	                              agent     agent
//	                              ctrd      ctrd
//
// (Hosts get .11, .12, … in the order they are added.)
//
// What runs where, and why:
//
//   - warren manager runs inside its host's namespace (ip netns exec, which
//     execs in place, so the PID the harness holds is the manager's): it
//     binds the node port on the host's address and reaches the other
//     managers over the LAN only. Its unix sockets are pathname sockets in
//     the host's directory, which any namespace can open, so the test talks
//     to every node's local API from its own namespace.
//   - containerd and warren agent run in the machine's namespace. `ip netns
//     exec` remounts /sys, which hides the v1 cgroup mounts runc needs
//     (MACHINE-NOTES.md); the agent does not need to live in the host's
//     namespace anyway: it builds the bridge, the task veths and its
//     nftables table in the namespace --host-netns names, gives each
//     container a network namespace of its own, and talks to containerd and
//     to its manager through unix sockets. So a worker's control traffic —
//     its manager's replica stream and the heartbeats and statuses it
//     forwards — crosses the host's link, and cutting the link cuts the
//     worker off exactly as a pulled cable would, while its containers keep
//     running.
//   - Cut and Heal add and remove the host's LAN-side veth in a set that a
//     bridge-family nftables rule drops frames to and from: the link stays
//     up and packets vanish (ARP too), as with a failed switch port. No
//     RST, no ICMP: TCP has to time out, as it would on a real LAN.
//
// Every process's stdout and stderr go to a file in its host's directory;
// Cluster.Dump writes their tails through the logger. Close tears
// everything down — processes by the PIDs the harness started, the
// containerds with everything they ran, mounts under the cluster's
// directory, the namespaces — and is safe to call after a partial start.
//
// The tests (root only; each skips with the reason elsewhere, and -short
// skips the slow ones):
//
//   - TestLeaderKillKeepsAcknowledgedWrites: kill -9 the leader under
//     writes through every manager; every acknowledged write is on every
//     survivor (consistent reads); the workers' containers are untouched;
//     the killed manager restarts and catches up.
//   - TestMinorityPartition: the cut-off leader refuses writes and
//     consistent reads with a 503 that says why, serves local reads, and
//     catches up when healed; the majority keeps taking writes.
//   - TestLinearizableRegister: consistent reads and puts of a service's
//     label through every manager under leader kills and partitions,
//     checked with porcupine (a visualization is written on failure).
//   - TestWorkerCutOff: a cut-off worker keeps its containers; its tasks
//     move only after the reschedule grace; back, it stops the moved ones.
//   - TestWorkerAgentSeesEveryTaskOfOnePlan, TestWorkerRequestsAreNotHeldBack,
//     TestWorkerKeepsReportingWhenItsManagerIsCut: the worker's replica
//     and its forwarding, where the tests above found faults.
//   - TestSecurity, TestConcurrentTokenRequests: tokens, certificates, the
//     worker's scope, the local socket.
//   - TestLogsAndExecAcrossNodes: a service's logs and exec asked of m1 run
//     on the workers that run its tasks (operators' certificates too); a
//     cut-off worker is named, never left out; a worker's certificate reads
//     no other node's logs; warrenctl's exit codes and warnings.
package cluster

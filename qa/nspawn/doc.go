// Package nspawn boots Warren hosts from the image's directory tree as
// systemd-nspawn machines, for tests that go through a real systemd: socket
// activation, restarts, the watchdog, reboots, SSH and cloud-init.
//
// A Cluster is N hosts. Each host is
//
//   - an overlayfs root (one upper directory per host over the shared,
//     read-only image tree image/out/tree), so a host keeps its state across
//     its own reboots and hosts share nothing;
//   - an ext4 file (loop-mounted) bound at /var/lib/containerd, because
//     containerd's overlay snapshots cannot live on an overlayfs root;
//   - a network namespace of its own, joined by a veth to a bridge in the
//     cluster's "lan" namespace, which is the test's side of the network:
//     10.77.0.1/24 there, 10.77.0.10+i on host i. None of these addresses
//     exists outside those namespaces;
//   - a cgroup of its own in every hierarchy, made before nspawn starts
//     (with no systemd on the build machine nspawn stays in its caller's
//     cgroups, and two machines would share one);
//   - the current bin/warren and bin/warrenctl bound read-only over the
//     image's copies, so a code change needs no image rebuild.
//
// Boot starts hosts together; Cluster.Add boots more into a running
// cluster on the same bridge (a first manager, then the hosts that join
// it with a token the test got from it: TestJoinFromImage).
//
// Commands run on a host through nsenter into its PID 1's namespaces
// (Host.Exec); from the test's side of the network through the lan
// namespace (Cluster.LanExec, used for ssh). When a test fails, each host's
// journal is written to a file and its tail logged. Close (and the
// t.Cleanup that NewCluster registers) always tears everything down:
// machines, mounts, namespaces, cgroups, directories.
//
// Tests that boot hosts run only as root and only with WARREN_QA set
// (`make qa` sets WARREN_QA=nspawn, `make qa-slow` WARREN_QA=qemu); the
// image tree is built with `make image-tree` when it is missing or older
// than its inputs. See MACHINE-NOTES.md for why each nspawn flag is there.
package nspawn

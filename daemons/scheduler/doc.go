// Package scheduler decides where pending tasks run. It owns placement only:
// which node each task goes to, or a readable reason why none can take it.
// Deciding how many tasks a service needs (the orchestrator) and committing
// the decision through Raft (the manager's leader loop) happen elsewhere.
//
// Schedule is a pure function of the nodes, the tasks already on them and the
// tasks to place: no I/O, no clock, no goroutines, no randomness. The same
// input always gives the same Result, whatever the order of nodes and placed.
//
// A node takes a task when all of these hold, checked in this order:
//
//  1. its availability is active (not drained or paused);
//  2. its state is ready (not down or unknown);
//  3. its Warren data partition is not low on space, as its agent last
//     reported it (api.NodeDisk.Low: less free than api.MinDiskFreeBytes,
//     256MiB, or api.MinDiskFreePercent, 5 %, of the partition, whichever
//     is more). A node that did not report its disk is not limited. The
//     tasks already on a low node stay there;
//  4. every placement constraint of the task matches it;
//  5. no port the task publishes is in use on the node by a task of another
//     service (api.PortKey.Clashes: same protocol and port, and the same
//     host address or either on all addresses). Tasks of one service share
//     their published port: the node balances it over them;
//  6. for each resource the task reserves (CPU, memory): the node reported a
//     capacity for it (a capacity of 0 means the node did not report, so
//     nothing that reserves that resource is placed there), and the
//     reservations of the tasks on it, plus this one, fit in that capacity;
//  7. its container subnet has an address for the task: every task takes
//     one, so the tasks on the node, plus this one, are at most what the
//     subnet holds (nodesubnet.Capacity: 253 for a /24). A node with no
//     subnet recorded runs no container network and is not limited.
//
// A task that reserves nothing fits any node that passes 1-5 and has an
// address free, whatever its capacity. Among the nodes that take a task,
// Schedule picks the one with the fewest tasks of the same service, then the
// fewest tasks in all, then the smallest node ID: 10 replicas on 3 equal
// nodes land 4/3/3.
//
// A pending task that already names a node (global services: the
// orchestrator picks the node) is checked against that node only. Such tasks
// are placed first, since they have nowhere else to go; the others are then
// placed service by service, in the order their services first appear in
// pending, and in pending order within a service.
//
// See README.md in this folder for the algorithm and the reason format.
package scheduler

// Package link owns the node's container network plumbing in the kernel:
// the container bridge, one veth pair per sandbox, and the sandboxes'
// network namespaces, bind-mounted as files so that they outlive the agent.
//
// Everything happens in one "host" network namespace, held by a Host: the
// node's own, or one a test created to play the node, so that tests never
// touch the real host. Operations on a Host are idempotent: calling them
// again after a crash or an agent restart converges on the same state.
//
// Network namespaces are per thread. This package never switches the
// namespace of the caller's thread: work that must run inside a namespace
// (creating one, writing its sysctls, opening netlink sockets in it) runs
// through Do, on a goroutine locked to its own OS thread that returns to its
// original namespace afterwards, or is discarded by the Go runtime if it
// cannot. Netlink sockets keep the namespace they were opened in, so the
// rest of the work is done through them from any thread.
package link

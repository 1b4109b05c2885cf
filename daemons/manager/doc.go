// Package manager is warren-manager: a small core and the roles around
// it, wired together, behind one router.
//
//   - core: the only owner of Raft, the state database and the watch hub
//     (View, Propose, IsLeader, LeaderID, Barrier, the voter operations);
//   - controlapi: the services, tasks and nodes handlers, the watch stream,
//     and what is passed to the node's agent (images, logs, exec);
//   - leader: the loops of the leader (reconcile, the node monitor, and
//     the heartbeats that feed it);
//   - membership: tokens, joining, certificates, CA rotation, promotion
//     and demotion (the Raft voters), and the node port where all of it
//     meets the network;
//   - worker: on a worker node, the node-scoped replica and the relay of
//     the node's own reports to the managers.
//
// The router (routes.go, router.go) is where authorization lives, once:
// every route of the API declares who may call it (authz.Rule) and where
// it runs (here, on the leader, or on the node that runs its task). A
// request is authenticated (the local socket; the read-only socket;
// warren-ingress's socket, authz.RoleIngress; a node-port certificate checked against the cluster's records, or, from a
// manager only, the caller it passes a request on for), checked against
// its route's rule, and run; a request passed on to the leader, or to the
// node that runs its task, carries its original caller and is checked
// again there.
//
//	client ─▶ router ─authn, rule─▶ handler ─validate─▶ core.Propose ─raft─▶ FSM ─▶ state DB
//	                      ├─▶ leader (same caller)                                └─▶ hub ─▶ watches, loops
//	                      └─▶ the task's node (same caller) ─▶ its agent (logs, exec)
//
// A task's logs and exec run on the node that runs the task (place
// onTaskNode): there the handler talks to the node's agent; from any other
// manager the request goes on over the node port to that node's manager, a
// worker's too, and its answer streams back (an exec session's upgraded
// connection is spliced through). A worker's node port serves those routes
// only, and only to a manager passing on a person's request (a local caller
// of a manager, or an operator); a worker's manager passes nothing on, as it
// may not vouch for anyone. A service's logs are merged on the manager
// asked, from each task's logs read on its own node; a node that cannot be
// reached is named in the stream (api.LogNotice), never left out silently.
// Every exec is logged (slog, "audit": the caller, the task, the command)
// by the manager where the caller entered, and again ("exec", "exec ended")
// by the manager of the node that runs it: the store has no event log yet.
//
// The ingress store (store/apply_ingress.go), which ingress nodes share
// for ACME, lives on the managers only: its routes run on the leader, a
// worker's manager relays its own node's requests (reads too) as the
// node, and the rule (ingressRule) admits an ingress node's warren-ingress
// for its own node, never an operator certificate or the read socket.
package manager

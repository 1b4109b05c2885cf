// Package manager is warren-manager: a small core and the roles around
// it, wired together, behind one router.
//
//   - core: the only owner of Raft, the state database and the watch hub
//     (View, Propose, IsLeader, LeaderID, Barrier, the voter operations);
//   - controlapi: the services, tasks and nodes handlers, the watch stream,
//     and what is passed to the node's agent (images, logs);
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
// it runs (here, or on the leader). A request is authenticated (the local
// socket; the read-only socket; a node-port certificate checked against
// the cluster's records, or, from a manager only, the caller it passes a
// request on for), checked against its route's rule, and run; a request a
// follower passes on to the leader carries its original caller and is
// checked again there.
//
//	client ─▶ router ─authn, rule─▶ handler ─validate─▶ core.Propose ─raft─▶ FSM ─▶ state DB
//	                      └─▶ leader (same caller)                                └─▶ hub ─▶ watches, loops
package manager

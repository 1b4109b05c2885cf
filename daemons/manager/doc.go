// Package manager is warren-manager: the Raft node that holds the cluster
// state, the HTTP API on the local unix socket, and the loops the leader
// runs (the reconcile loop that turns services into placed tasks, and the
// node monitor that turns agents' heartbeats into node states).
//
// Writes are validated here, before they reach Raft, then proposed as store
// commands; a write returns once it is committed and applied. Reads are
// served from the local state database; `?consistent` first waits for a
// Raft barrier. Watches stream the store's hub as NDJSON.
//
//	client ─HTTP─▶ handler ─validate─▶ propose ─raft─▶ FSM ─▶ state DB
//	                                                      └─▶ hub ─▶ watches, leader loops
package manager

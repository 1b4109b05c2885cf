// Package core is the manager's core: the only owner of the Raft node, the
// state database and the watch hub. The manager's roles (the control API,
// the leader's loops, membership, the worker replica) hold it through the
// narrow handle its methods make: View, Hub, Propose, IsLeader, LeaderID,
// Barrier, and the voter operations. None of them reaches *raft.Raft.
//
//	roles ─Propose─▶ Raft ─▶ FSM ─▶ state DB ─View─▶ roles
//	                            └─▶ hub ─Hub().Read/Wait─▶ watches, loops
//
// A full disk does not make the manager panic: the core stops its Raft
// instance, refuses every write with a clear error, and starts a new
// instance over the same stores once there is space (disk.go).
//
// A worker's manager has a Store (state and hub, filled by its replica)
// and no Raft.
package core

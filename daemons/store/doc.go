// Package store owns Warren's cluster state: a bbolt database of services,
// tasks and nodes, the Raft FSM that changes it, and the watch hub that
// streams every change to the daemons.
//
// Changes arrive only as commands (commands.go): one type byte and a JSON
// payload, from an append-only list. The FSM applies a batch of committed
// Raft log entries in one bbolt transaction; each command checks everything
// before it writes anything, so a refused command leaves no trace while the
// rest of its batch still applies (a deployment, which applies several
// service writes, puts back what its earlier ones wrote when a later one
// is refused: apply_deploy.go). Decoding failures are bugs and panic;
// state errors (name taken, version moved on) are returned to the caller of
// raft.Apply as an *api.Error.
//
// A state database that cannot be written for lack of space (ENOSPC,
// EDQUOT) stops the FSM instead of panicking: it applies nothing until its
// owner restarts Raft over it (diskfull.go). Other write errors panic.
//
// The state database records the Raft index it has applied, and entries at
// or below it are skipped, so the manager runs Raft with
// NoSnapshotRestoreOnStart and restarts with its state as it was, without
// replaying everything (see State.AppliedIndex).
//
// Every object's Version is the index of the entry that last changed it.
// After each batch, the hub appends one event per changed object (encoded
// once, shared by every watcher) to a bounded ring; a watcher that falls
// further behind than the ring holds is told to resync instead of being
// buffered without bound.
//
// The cluster's events (warrenctl events: a task failed, an update
// started, a node went down) are derived in events.go from the changes
// the put helpers make, in the same transaction, and kept in the state
// (a bounded count and age), so snapshots carry them and every manager
// holds the same ones.
//
// The ingress store (apply_ingress.go) is a small key/value store with
// leases as locks, for what warren-ingress shares between ingress nodes;
// its values are sealed like secrets' and it is never published to
// watchers.
package store

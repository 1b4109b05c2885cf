// Package api holds Warren's API objects (services, tasks, nodes, watch
// events), their validation, and the error type every endpoint returns.
//
// It is the contract between warrenctl, the daemons and the store: plain
// types with JSON and YAML tags, no I/O. The HTTP client lives in
// api/client; the server lives in the manager.
//
// Every stored object carries Meta: its ID and the Raft index of its last
// change (Version). An update may name the version it was based on and is
// refused with a conflict if the object has moved on.
package api

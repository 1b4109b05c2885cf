// Package dns is warren-dns: the service-discovery resolver of a node's
// containers. It answers names under the cluster domain (warren.internal by
// default) from an in-memory replica of the cluster's services and tasks,
// fed by one watch on the node's own warren-manager, and forwards every
// other name to the host's upstream resolvers.
//
// Queries go through a chain of handlers in the shape of net/http and
// CoreDNS: each link is a [Handler] that answers or hands the query to the
// next one.
//
//	UDP/TCP ─▶ Server ─▶ Guard ─▶ Zone ─▶ Forwarder ─▶ upstreams
//	           (truncate,  (FORMERR,  (cluster      (resolv.conf,
//	            recover)    NOTIMP,    names from    minus ourselves)
//	                        REFUSED)   the Table)
//
// The [Replica] keeps the watched objects and, after each batch of changes,
// builds an immutable [Table] (a pure function of services and tasks,
// [BuildTable]) and swaps it in with an atomic pointer: queries never take
// a lock and never call the API. When the manager is unreachable the last
// table keeps being served while the replica reconnects and resumes from
// its last index.
//
// Names served (D is the cluster domain):
//
//	SERVICE.D                 A/AAAA: running, healthy tasks, rotated per query
//	SERVICE.SLOT.D            A/AAAA: the same, of one slot (replicated services)
//	SERVICE.NODEID.D          A/AAAA: the same, on one node (global services)
//	TASKNAME.TASKID.D         A/AAAA: that one task while it runs, healthy or not
//	_PUBLISHED._PROTO.SERVICE.D   SRV: one port of the service, per healthy task
//	_PROTO.SERVICE.D          SRV: every port of that protocol
//	D                         SOA
//	reverse of a task address PTR: the task's name
//
// Unknown names under D are NXDOMAIN and known names asked for another type
// are NODATA, both with the SOA (whose minimum is the TTL) in the authority
// section. README.md has the design note.
package dns

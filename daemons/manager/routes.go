package manager

import (
	"net/http"
	"strconv"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/controlapi"
	"github.com/warren-edge/warren/daemons/store"
)

// fileRule is who may fetch a value of a secret or config (kind): node
// {ref} itself (its certificate, or its agent on its own socket), and
// only while it runs a task, meant to run and not ended, that uses
// version {version} of {id}. A node without one learns nothing, not even
// whether the secret exists.
func (m *Manager) fileRule(kind string) authz.Rule {
	return authz.Rule{Who: authz.Admin | authz.Nodes, Self: true, Own: true, Scope: func(c authz.Caller, r *http.Request) error {
		node, id := r.PathValue("ref"), r.PathValue("id")
		version, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
		holds := false
		if err == nil {
			m.store.View(func(v *store.View) error { holds = v.NodeHolds(kind, node, id, version); return nil })
		}
		if !holds {
			return api.Errorf(api.CodeNotFound, "node %s runs no task that uses %s %s version %s", node, kind, id, r.PathValue("version"))
		}
		return nil
	}}
}

// ingressRule is who may use the ingress store, its locks and (secret)
// the secrets ingress routes name: the warren-ingress of node {ref} (on
// its node's ingress socket, or its node's certificate, which its
// worker's manager relays the request with), and the node's local admin.
// Never an operator certificate, the read socket, nor another node (Own,
// Self). And only an ingress node: node {ref} has the label
// api.LabelIngress "true" (Scope, on every manager's hop, against its
// state; a worker's replica holds no labels, and relays the request as
// the node to a manager, which checks). A secret no route names is not
// found, whoever asks.
func (m *Manager) ingressRule(secret bool) authz.Rule {
	return authz.Rule{Who: authz.Admin | authz.Ingress | authz.Nodes, Self: true, Own: true, Scope: func(c authz.Caller, r *http.Request) error {
		if m.work != nil {
			return nil
		}
		ref := r.PathValue("ref")
		var n *api.Node
		named := true
		m.store.View(func(v *store.View) error {
			n, _ = v.NodeByID(ref)
			if secret {
				named = v.IngressNamesSecret(r.PathValue("name"))
			}
			return nil
		})
		admin := c.Kind == authz.Local && c.Role == authz.RoleAdmin
		if !admin && !n.IsIngressNode() {
			return api.Errorf(api.CodeForbidden, "%s may not call %s %s: node %s is not an ingress node (give it the label %s=true: warrenctl node update --label-add %s=true %s)",
				c, r.Method, r.URL.Path, ref, api.LabelIngress, api.LabelIngress, ref)
		}
		if !named {
			return controlapi.ErrIngressSecret(r.PathValue("name"))
		}
		return nil
	}}
}

// execRoute runs a command in a task; where its caller enters the
// cluster, the audit also records an exec.run event.
const execRoute = "POST /v1/tasks/{ref}/exec"

// place is where a route runs.
type place uint8

const (
	// here: served from this node's state (a worker's replica included).
	here place = iota
	// onLeader: run on the leader; a follower passes the request on (with
	// its caller), a worker's manager refuses it.
	onLeader
	// readLeader: here, or on the leader when the caller asks ?consistent.
	readLeader
	// nodeWrite: a node's own report (heartbeat, task statuses) or
	// request (its tasks' secrets): to the leader from a manager; a
	// worker's manager relays it to a manager as the node itself.
	nodeWrite
	// onTaskNode: on the node that runs the task {ref} names (its logs,
	// exec): here if it is this node's, else passed on to that node's
	// manager (a worker's too) over the node port, with the caller, and
	// checked again there. These are the only routes a worker's node port
	// serves, and only to a manager passing on a person's request.
	onTaskNode
	// onNode: on node {ref} (an image's blobs, which another node fetches
	// for itself): here if it is this node, else passed on to that node's
	// manager over the node port as this node, not for anyone (so a
	// worker's manager may pass it on too), and checked again there.
	onNode
)

// route is one endpoint of the API: who may call it (checked on every
// hop, from the caller the request names) and where it runs.
type route struct {
	pattern string
	rule    authz.Rule
	place   place
	h       http.HandlerFunc
}

// Who may call what. Readers are the node's local callers (root and group
// warren), the read-only socket (dns, ingress) and operator certificates
// of any role; Writers leave out viewers; Admin is the local socket and
// admin operators only (the CA, tokens, operators and node roles). Nodes
// call for themselves: Self ties a worker to its own node's {ref}. A node
// whose certificate expired calls the renewal route only (Expired), and
// joining, which needs a token.
func (m *Manager) routeTable() []route {
	c, l, ms := m.ctl.Handlers(), m.lead, m.mem.Handlers()
	heartbeat := http.HandlerFunc(nil)
	if l != nil {
		heartbeat = l.PostHeartbeat
	}
	readers := authz.Rule{Who: authz.Readers}
	writers := authz.Rule{Who: authz.Writers}
	admin := authz.Rule{Who: authz.Admin}
	self := authz.Rule{Who: authz.Admin | authz.Workers, Self: true}
	return []route{
		{"GET /v1/info", authz.Rule{Who: authz.Readers | authz.Nodes}, here, c.Info},
		{"GET /v1/health", authz.Rule{Who: authz.Readers | authz.Nodes}, here, c.Health},

		{"GET /v1/services", readers, readLeader, c.ListServices},
		{"POST /v1/services", writers, onLeader, c.CreateService},
		{"GET /v1/services/{ref}", readers, readLeader, c.GetService},
		{"PUT /v1/services/{ref}", writers, onLeader, c.UpdateService},
		{"POST /v1/services/{ref}/scale", writers, onLeader, c.ScaleService},
		{"POST /v1/services/{ref}/rollback", writers, onLeader, c.RollbackService},
		{"POST /v1/services/{ref}/promote", writers, onLeader, c.PromoteService},
		{"DELETE /v1/services/{ref}", writers, onLeader, c.DeleteService},
		// Several services created, updated and removed as one (a stack).
		{"POST /v1/deployments", writers, onLeader, c.Deploy},
		// A service's logs: its tasks' logs, each read on its own node
		// (GET /v1/tasks/{ref}/logs there), merged here.
		{"GET /v1/services/{ref}/logs", readers, here, c.ServiceLogs},

		// Volumes: the managers hold them (a worker's replica does not).
		{"GET /v1/volumes", readers, readLeader, c.ListVolumes},
		{"POST /v1/volumes", writers, onLeader, c.CreateVolume},
		{"GET /v1/volumes/{name}", readers, readLeader, c.GetVolume},
		{"DELETE /v1/volumes/{name}", writers, onLeader, c.DeleteVolume},

		{"GET /v1/tasks", readers, readLeader, c.ListTasks},
		{"GET /v1/tasks/{ref}", readers, readLeader, c.GetTask},
		{"GET /v1/tasks/{ref}/logs", readers, onTaskNode, c.TaskLogs},
		{execRoute, authz.Rule{Who: authz.Writers, Audit: true}, onTaskNode, c.Exec},

		{"GET /v1/nodes", readers, readLeader, c.ListNodes},
		{"GET /v1/nodes/{ref}", readers, readLeader, c.GetNode},
		{"PUT /v1/nodes/{ref}/spec", writers, onLeader, c.UpdateNodeSpec},
		{"DELETE /v1/nodes/{ref}", writers, onLeader, c.DeleteNode},
		{"POST /v1/nodes/{ref}/promote", admin, onLeader, ms.Promote},
		{"POST /v1/nodes/{ref}/demote", admin, onLeader, ms.Demote},
		{"POST /v1/nodes/{ref}/heartbeat", self, nodeWrite, heartbeat},
		{"POST /v1/nodes/{ref}/tasks/status", self, nodeWrite, c.TaskStatus},
		// A node's break-glass journal: sent by the node on reconnect,
		// read by operators from the managers (a worker holds none).
		{"POST /v1/nodes/{ref}/journal", self, nodeWrite, c.PostNodeJournal},
		{"GET /v1/nodes/{ref}/journal", readers, readLeader, c.NodeJournal},

		// Secrets and configs. Operators never read a secret's value: a
		// node gets the values of its own tasks (Own), those that run
		// there and use that version (Scope, checked on every hop), from
		// the leader (from a worker, relayed as the node).
		{"GET /v1/secrets", readers, readLeader, c.Secrets.List},
		{"POST /v1/secrets", writers, onLeader, c.Secrets.Create},
		{"GET /v1/secrets/{ref}", readers, readLeader, c.Secrets.Get},
		{"PUT /v1/secrets/{ref}", writers, onLeader, c.Secrets.Update},
		{"DELETE /v1/secrets/{ref}", writers, onLeader, c.Secrets.Delete},
		{"GET /v1/nodes/{ref}/secrets/{id}/{version}", m.fileRule(api.KindSecret), nodeWrite, c.Secrets.Node},
		{"GET /v1/configs", readers, readLeader, c.Configs.List},
		{"POST /v1/configs", writers, onLeader, c.Configs.Create},
		{"GET /v1/configs/{ref}", readers, readLeader, c.Configs.Get},
		{"PUT /v1/configs/{ref}", writers, onLeader, c.Configs.Update},
		{"DELETE /v1/configs/{ref}", writers, onLeader, c.Configs.Delete},
		{"GET /v1/nodes/{ref}/configs/{id}/{version}", m.fileRule(api.KindConfig), nodeWrite, c.Configs.Node},

		// The ingress store, its locks, and the secrets ingress routes
		// name: for an ingress node's warren-ingress, on the leader (a
		// worker relays its own node's requests, as the node).
		{"GET /v1/nodes/{ref}/ingress/store", m.ingressRule(false), nodeWrite, c.Ingress.Get},
		{"PUT /v1/nodes/{ref}/ingress/store", m.ingressRule(false), nodeWrite, c.Ingress.Put},
		{"DELETE /v1/nodes/{ref}/ingress/store", m.ingressRule(false), nodeWrite, c.Ingress.Delete},
		{"POST /v1/nodes/{ref}/ingress/locks/{name...}", m.ingressRule(false), nodeWrite, c.Ingress.Lock},
		{"DELETE /v1/nodes/{ref}/ingress/locks/{name...}", m.ingressRule(false), nodeWrite, c.Ingress.Unlock},
		{"GET /v1/nodes/{ref}/ingress/secrets/{name}", m.ingressRule(true), nodeWrite, c.Ingress.Secret},
		// Every ingress route, its backends and its certificate's state
		// (no key material), for warrenctl ingress ls.
		{"GET /v1/ingress/routes", readers, readLeader, c.Ingress.Routes},

		// A worker's certificate watches its own node's scope only (the
		// handler narrows it to the caller).
		{"GET /v1/watch", authz.Rule{Who: authz.Readers | authz.Workers}, here, c.Watch},
		// The cluster's events (task failures, updates, nodes, execs):
		// readers, as the services they tell of; never a worker's
		// certificate. Read on the manager asked: every manager derives
		// the same events (a worker's replica holds none).
		{"GET /v1/events", readers, here, c.Events},

		{"GET /v1/images", readers, here, c.Agent},
		// An image's blobs on node {ref}, for a node that fetches the image
		// (its agent through its own manager's socket, which passes it on
		// as the node) and for the local admin.
		{"GET /v1/nodes/{ref}/agent/v1/blobs/{digest}", authz.Rule{Who: authz.Admin | authz.Nodes}, onNode, c.Blob},
		{"HEAD /v1/nodes/{ref}/agent/v1/blobs/{digest}", authz.Rule{Who: authz.Admin | authz.Nodes}, onNode, c.Blob},
		// Make an image present on node {ref} ahead of a rollout (fetched
		// from a node that holds it): operators; the next hop sees the
		// manager that passes it on.
		{"POST /v1/nodes/{ref}/agent/v1/images/prestage", authz.Rule{Who: authz.Writers | authz.Managers}, onNode, c.Prestage},
		{"POST /v1/images/load", writers, here, c.Agent},

		{"POST /v1/join", authz.Rule{Who: authz.Anyone}, onLeader, ms.Join},
		{"GET /v1/join-tokens", admin, readLeader, ms.ListJoinTokens},
		{"POST /v1/join-tokens/{kind}", admin, onLeader, ms.NewJoinToken},
		{"POST /v1/join-tokens/{kind}/{action}", admin, onLeader, ms.NewJoinToken},
		{"DELETE /v1/join-tokens/{id}", admin, onLeader, ms.DeleteJoinToken},
		// A node renews its certificate; one cut off past its expiry
		// renews it within the grace (the one route an expired
		// certificate may call). On the leader, which records when the
		// new one ends in the node's record.
		{"POST /v1/certs/renew", authz.Rule{Who: authz.Nodes, Expired: true}, onLeader, ms.Renew},
		{"GET /v1/ca", authz.Rule{Who: authz.Readers | authz.Nodes}, here, ms.CAInfo},
		{"POST /v1/ca/rotate", admin, onLeader, ms.RotateCA},

		// Encryption at rest. Unlock is served by a locked manager (its
		// only write); the unlock key and the data keys' check open values,
		// on the manager asked.
		{"POST /v1/unlock", admin, here, ms.Unlock},
		{"GET /v1/unlock-key", admin, here, ms.UnlockKey},
		{"POST /v1/unlock-key/rotate", admin, onLeader, ms.RotateUnlockKey},
		{"PUT /v1/autolock", admin, onLeader, ms.Autolock},
		{"GET /v1/keys", admin, here, ms.Keys},
		{"POST /v1/keys/rotate", admin, onLeader, ms.RotateDataKey},
		{"GET /v1/keys/check", admin, here, ms.CheckKeys},

		{"POST /v1/operators", admin, onLeader, ms.NewOperator},
		{"GET /v1/operators", admin, readLeader, ms.ListOperators},
		{"DELETE /v1/operators/{name}", admin, onLeader, ms.DeleteOperator},

		{"POST /v1/internal/command", authz.Rule{Who: authz.Managers | authz.Admin}, onLeader, ms.InternalCommand},
		{"POST /v1/internal/promote", authz.Rule{Who: authz.Managers | authz.Admin}, onLeader, ms.InternalPromote},
		// The cluster's KEK, for a manager that has none (it joined, or was
		// promoted): managers' certificates only, not the local socket
		// (no person needs it), sealed under the unlock key with autolock.
		{"GET /v1/internal/kek", authz.Rule{Who: authz.Managers}, here, ms.InternalKEK},

		{"GET /metrics", readers, here, m.metrics.handler().ServeHTTP},
	}
}

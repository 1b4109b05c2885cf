// Package controlapi is the manager's control API: the handlers of
// services, tasks and nodes, the watch stream, and the calls passed to the
// node's agent (images, logs, exec). It reads the node's state through a Reader
// and writes through the core's Propose; on a worker's manager it serves
// the node's replica and has no Raft (writes never reach it: the router
// refuses or relays them).
//
// Handlers are thin: decode, call, encode. Who may call them is the
// route table's business (authz), not theirs.
package controlapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/store"
)

// Reader is what the control API reads: the node's state and its changes.
type Reader interface {
	View(fn func(v *store.View) error) error
	Hub() *store.Hub
	AppliedIndex() uint64
}

// Raft is what the control API needs of a manager's core.
type Raft interface {
	Propose(ctx context.Context, t store.CommandType, payload any) (any, error)
	Replaying(ctx context.Context) bool
	Barrier(timeout time.Duration) error
	LeaderID() string
	State() (int, string)
	IsVoter() bool
	RemoveServer(id string) error
	// DiskStatus says why Raft is stopped for a full disk; "" if it is not.
	DiskStatus() string
}

// Config is what a Server is made of.
type Config struct {
	NodeID string
	// ClusterID and ClusterCIDR answer Info on a worker, which holds no
	// cluster record.
	ClusterID, ClusterCIDR string
	DataDir                string
	Version                string
	AgentSocket            string
	// Orchestrator is what dry runs plan with.
	Orchestrator orchestrator.Options
	// RevokeFor is how long a removed node's identity stays on the deny
	// list: as long as any certificate it holds may be valid.
	RevokeFor time.Duration
	// Keys seals and opens the values kept encrypted (nil on a worker's
	// manager, which holds none).
	Keys *keys.Ring
	// Autolocked says whether this manager waits for warrenctl unlock.
	Autolocked func() bool
	// Health says whether the manager can serve (GET /v1/health).
	Health func() error
	// Watchers counts open watch streams (+1, -1), for the metrics.
	Watchers func(delta int)
	// Peers reaches other nodes' managers (the logs of a service's tasks
	// on other nodes).
	Peers *peer.Client
	// LeaderWrite commits a command from inside the manager (here on the
	// leader, through the leader's internal endpoint from a follower): an
	// exec's event. Nil on a worker.
	LeaderWrite func(ctx context.Context, t store.CommandType, payload any) error
	Logger      *slog.Logger
}

// Server serves the control API.
type Server struct {
	cfg   Config
	store Reader
	raft  Raft // nil on a worker
}

// New makes the control API of a manager (raft set) or of a worker's
// replica (raft nil).
func New(cfg Config, st Reader, raft Raft) *Server {
	if cfg.Watchers == nil {
		cfg.Watchers = func(int) {}
	}
	if cfg.Health == nil {
		cfg.Health = func() error { return nil }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, store: st, raft: raft}
}

func (s *Server) isWorker() bool { return s.raft == nil }

// Handlers names the control API's handlers for the route table.
type Handlers struct {
	Info, Health                                                         http.HandlerFunc
	ListServices, CreateService, GetService, UpdateService, ScaleService http.HandlerFunc
	RollbackService, DeleteService, Deploy                               http.HandlerFunc
	PromoteService                                                       http.HandlerFunc
	ListTasks, GetTask, TaskStatus                                       http.HandlerFunc
	NodeJournal, PostNodeJournal                                         http.HandlerFunc
	ListVolumes, CreateVolume, GetVolume, DeleteVolume                   http.HandlerFunc
	ListNodes, GetNode, UpdateNodeSpec, DeleteNode                       http.HandlerFunc
	Watch, ServiceLogs, TaskLogs, Exec, Agent, Blob, Prestage            http.HandlerFunc
	Events                                                               http.HandlerFunc
	// Secrets and configs (secrets.go): Secrets for secrets, Configs for
	// configs.
	Secrets, Configs FileHandlers
	// Ingress is the ingress store's (ingress.go).
	Ingress IngressHandlers
}

// FileHandlers are the handlers of secrets or of configs.
type FileHandlers struct {
	List, Get, Create, Update, Delete http.HandlerFunc
	// Node serves a value to a node for its task.
	Node http.HandlerFunc
}

func (s *Server) fileHandlers(kind string) FileHandlers {
	return FileHandlers{List: s.listFiles(kind), Get: s.getFile(kind), Create: s.createFile(kind),
		Update: s.updateFile(kind), Delete: s.deleteFile(kind), Node: s.nodeFile(kind)}
}

// Handlers returns the handlers.
func (s *Server) Handlers() Handlers {
	return Handlers{
		Info: s.getInfo, Health: s.getHealth,
		ListServices: s.listServices, CreateService: s.createService, GetService: s.getService,
		UpdateService: s.updateService, ScaleService: s.scaleService, RollbackService: s.rollbackService, PromoteService: s.promoteService,
		DeleteService: s.deleteService, Deploy: s.deploy,
		ListTasks: s.listTasks, GetTask: s.getTask, TaskStatus: s.postTaskStatus,
		NodeJournal: s.getNodeJournal, PostNodeJournal: s.postNodeJournal,
		ListVolumes: s.listVolumes, CreateVolume: s.createVolume, GetVolume: s.getVolume, DeleteVolume: s.deleteVolume,
		ListNodes: s.listNodes, GetNode: s.getNode, UpdateNodeSpec: s.updateNodeSpec, DeleteNode: s.deleteNode,
		Watch: s.watch, ServiceLogs: s.serviceLogs, TaskLogs: s.taskLogs, Exec: s.exec, Agent: s.proxyAgent, Blob: s.blob, Prestage: s.prestage,
		Events:  s.events,
		Secrets: s.fileHandlers(api.KindSecret), Configs: s.fileHandlers(api.KindConfig),
		Ingress: s.ingressHandlers(),
	}
}

// consistent makes a read see every write committed before it, when the
// caller asks with ?consistent (the router runs such reads on the leader).
func (s *Server) consistent(r *http.Request) error {
	if s.isWorker() || !httpx.Bool(r, "consistent") {
		return nil
	}
	if err := s.raft.Barrier(5 * time.Second); err != nil {
		return api.Errorf(api.CodeNotLeader, "a consistent read needs the leader (%v): read without ?consistent, or retry", err)
	}
	return nil
}

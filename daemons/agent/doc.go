// Package agent is warren-agent: it runs this node's tasks.
//
// It watches the tasks assigned to its node through the local manager's
// API, compares them with the containers the runtime reports, and acts:
// start, stop, remove, report. The comparison is a pure step function
// (Step, in step.go) over the desired tasks and the observed containers; the
// agent's loop runs the actions it returns, each task's actions one at a
// time, different tasks in parallel.
//
// It also publishes the node's ports (ports.go): a host-mode port for the
// node's own running tasks, an ingress port on every node for the serving
// tasks of its service on all nodes, which the agent learns from a second
// watch, of every task of the cluster (ingress.go).
//
// It shares the node's images with other nodes (images.go, package
// imagexfer): it serves their blobs by digest on its socket, lists them for
// the managers (Images), and asks Config.FetchImage for an image a task
// needs and the node lacks, before the image's registry.
//
// Containers outlive the agent: a restarted agent lists the runtime's
// containers, matches them to tasks by the task ID they carry, and adopts
// them without restarting anything. A container whose task is gone is
// stopped and removed.
//
// Task states the agent reports, in order:
//
//	assigned ─▶ preparing (image, network) ─▶ starting ─▶ running ─▶ complete (exit 0)
//	                       │                                    ├─▶ failed (exit ≠ 0, OOM, gone)
//	                       └─▶ failed / rejected (no image,     └─▶ shutdown (asked to stop)
//	                            bad command, port in use)
//
// The manager replaces ended tasks under the restart policy; the agent
// never restarts a task by itself.
//
// The agent socket (Handler) is open to group warren while the agent runs
// as root: every route that takes a task ID checks it (withTaskID,
// api.ValidateID) before anything else, and taskPath, the one place a task
// ID becomes a file path, checks it again. (Exec on it is as powerful as
// exec through the manager: the socket's group is the node's operators.)
// It serves images, task logs and exec sessions (exec.go: an upgraded
// connection of api frames, run through the runtime's ExecStream); the
// manager passes the cluster API's calls of those here, on the node that
// runs the task.
package agent

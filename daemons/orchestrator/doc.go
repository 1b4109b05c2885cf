// Package orchestrator decides what must change so that the tasks match the
// services: which tasks to make, which to stop, which to forget. It is a
// pure function of the state and the clock (Reconcile), and Plan adds the
// scheduler's placement to make the one command the manager's leader loop
// commits. `--dry-run` uses the same Plan.
//
// Per replicated service, each slot 1..replicas has one live task; per
// global service, each eligible node has one. A slot whose task ended is
// refilled under the restart policy (condition, delay with backoff, max
// attempts in a window). Tasks on a drained node are moved at once; tasks on
// a node that is down are moved once the reschedule grace has passed, so a
// device that only lost its network is not duplicated. Slots above the
// replica count are stopped, highest first. A changed spec rolls out
// (parallelism, delay, stop-first or start-first), and a task that fails
// during the rollout pauses it. Ended tasks are kept as history, a few per
// slot, then deleted.
package orchestrator

package api

import "fmt"

// A deployment changes several services as one (POST /v1/deployments): a
// stack deploy, or an apply of several services. It is one Raft entry, so
// it applies whole or not at all, and the services it creates or updates
// carry its ID in UpdateStatus.Deployment: when one of them fails its
// update and rolls back, the others roll back with it; those it created
// have nothing to roll back to, and their updates pause, saying why.

// LabelStack is the label that names the stack a service (and the
// secrets, configs and volumes a stack deploy made) belongs to.
const LabelStack = "warren.stack"

// DeploymentRequest is the body of POST /v1/deployments.
type DeploymentRequest struct {
	// Name is the stack's name, or "" for services of no stack. With a
	// name, each service gets the label warren.stack=Name.
	Name     string        `json:"name,omitempty"`
	Services []ServiceSpec `json:"services"`
	// Prune removes the services labelled warren.stack=Name that are not
	// in Services (it needs a Name).
	Prune bool `json:"prune,omitempty"`
}

// What a deployment did to each service (DeploymentService.Action).
const (
	DeployCreated   = "created"
	DeployUpdated   = "updated"
	DeployUnchanged = "unchanged"
	DeployRemoved   = "removed"
	// DeployResumed: a service an earlier deployment created, whose
	// update paused when that deployment failed, deployed again with the
	// same spec: its update starts again, as part of this deployment.
	DeployResumed = "resumed"
)

// Deployment is the answer of POST /v1/deployments.
type Deployment struct {
	// ID names the deployment (UpdateStatus.Deployment); "" if nothing
	// changed (no deployment was made) or on a dry run.
	ID       string              `json:"id,omitempty"`
	Name     string              `json:"name,omitempty"`
	Services []DeploymentService `json:"services"`
}

// DeploymentService is what the deployment did to one service: the
// service as it is after it (as it would be, on a dry run; as it was, for
// a removed one).
type DeploymentService struct {
	Name    string   `json:"name"`
	Action  string   `json:"action"`
	Service *Service `json:"service,omitempty"`
}

// ValidateStackName checks a stack's name: a DNS label, as a service's
// name, short enough to leave room for the services' names after it.
func ValidateStackName(name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("stack name: %w", err)
	}
	if len(name) > MaxNameLen/2 {
		return fmt.Errorf("stack name %q is %d characters long; the limit is %d, so that its services' names fit", name, len(name), MaxNameLen/2)
	}
	return nil
}

// MaxDeploymentServices bounds the services of one deployment.
const MaxDeploymentServices = 256

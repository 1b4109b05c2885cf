module github.com/hashicorp/raft-wal

go 1.18

require (
	github.com/armon/go-metrics v0.4.1
	github.com/benbjohnson/immutable v0.4.0
	github.com/coreos/etcd v3.3.27+incompatible
	github.com/hashicorp/go-hclog v0.14.1
	github.com/hashicorp/raft v1.4.0
	go.etcd.io/bbolt v1.3.6
)

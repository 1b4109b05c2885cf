#!/usr/bin/env bash
# make demo: a real one-node Warren cluster on a real containerd, on this
# machine, as root. It starts containerd, warren-manager and warren-agent
# from bin/, loads a busybox image built from Debian's busybox-static,
# deploys a web service with 3 replicas published on port 8080, reaches it
# from the host and from another network namespace, routes HTTP to it by
# host name through warren-ingress, kills one container to show it come
# back, and leaves the cluster running for you to explore.
#
#   qa/demo/demo.sh        start (or restart) the demo
#   qa/demo/demo.sh stop   stop it and remove everything it made
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
RUN=/run/warren-demo
BIN=$ROOT/bin
export WARREN_HOST=unix://$RUN/api.sock
CLIENT_NS=warren-demo-client

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; }
die()  { echo "demo: $*" >&2; exit 1; }

stop_pid() {
  local f=$RUN/$1.pid
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  [ -d "$RUN" ] || { echo "demo: not running"; return 0; }
  if [ -S "$RUN/api.sock" ] && [ -x "$BIN/warrenctl" ]; then
    for s in $("$BIN/warrenctl" service ls -q 2>/dev/null); do "$BIN/warrenctl" service rm "$s" >/dev/null 2>&1 || true; done
    # Let the agent stop and remove the containers it runs.
    for _ in $(seq 100); do
      [ -z "$(ctr --address "$RUN/containerd/containerd.sock" -n warren containers ls -q 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop_pid ingress
  stop_pid dns
  stop_pid agent
  stop_pid manager
  stop_pid mesh
  # Anything the agent did not get to.
  if [ -S "$RUN/containerd/containerd.sock" ]; then
    for c in $(ctr --address "$RUN/containerd/containerd.sock" -n warren tasks ls -q 2>/dev/null); do
      ctr --address "$RUN/containerd/containerd.sock" -n warren tasks kill -s KILL "$c" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for c in $(ctr --address "$RUN/containerd/containerd.sock" -n warren containers ls -q 2>/dev/null); do
      ctr --address "$RUN/containerd/containerd.sock" -n warren tasks rm -f "$c" >/dev/null 2>&1 || true
      ctr --address "$RUN/containerd/containerd.sock" -n warren containers rm "$c" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd
  ip netns del "$CLIENT_NS" 2>/dev/null || true
  ip link del warren-demo0 2>/dev/null || true
  ip link del warren0 2>/dev/null || true
  ip link del warren-wg 2>/dev/null || true
  nft delete table inet warren 2>/dev/null || true
  for m in $(awk -v r="$RUN" '$2 ~ "^"r {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$RUN"
  echo "demo: stopped and cleaned up"
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

[ "$(id -u)" = 0 ] || die "run me as root (containerd, network namespaces and nftables need it)"
for b in containerd runc nft ip ctr curl busybox; do command -v $b >/dev/null || die "$b is missing: run make deps"; done
[ -x "$BIN/warren" ] && [ -x "$BIN/warrenctl" ] || die "bin/warren and bin/warrenctl are missing: run make build"
stop >/dev/null
mkdir -p "$RUN/containerd"

say "Starting a private containerd ($RUN/containerd)"
cat > "$RUN/containerd/config.toml" <<TOML
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$RUN/containerd/containerd.sock"
[ttrpc]
  address = "$RUN/containerd/containerd.sock.ttrpc"
TOML
containerd --config "$RUN/containerd/config.toml" >"$RUN/containerd.log" 2>&1 &
echo $! > "$RUN/containerd.pid"
for _ in $(seq 100); do [ -S "$RUN/containerd/containerd.sock" ] && break; sleep 0.1; done
[ -S "$RUN/containerd/containerd.sock" ] || die "containerd did not start; see $RUN/containerd.log"

say "Starting warren-mesh, warren-manager, warren-agent, warren-dns and warren-ingress (logs in $RUN/*.log)"
# The node's WireGuard interface (userspace where the kernel has no
# WireGuard); one node has no peers, but node inspect shows its end.
"$BIN/warren" mesh --iface warren-wg >"$RUN/mesh.log" 2>&1 &
echo $! > "$RUN/mesh.pid"
# The node is an ingress node (label warren.ingress=true): its
# warren-ingress routes HTTP by host name.
"$BIN/warren" manager --data-dir "$RUN/manager" --api-socket "$RUN/api.sock" --agent-socket "$RUN/agent.sock" \
  --ingress-socket "$RUN/ingress.sock" --label warren.ingress=true >"$RUN/manager.log" 2>&1 &
echo $! > "$RUN/manager.pid"
"$BIN/warren" agent --api-socket "$RUN/api.sock" --containerd-socket "$RUN/containerd/containerd.sock" \
  --data-dir "$RUN/agent" --agent-socket "$RUN/agent.sock" --netns-dir "$RUN/netns" \
  --mesh-status "$RUN/mesh-status.json" >"$RUN/agent.log" 2>&1 &
echo $! > "$RUN/agent.pid"
# warren-dns answers containers on the bridge address (the agent makes the
# bridge; dns waits for the address to appear).
"$BIN/warren" dns --api-socket "$RUN/api.sock" --listen 10.240.0.1:53 --mesh-status "$RUN/mesh-status.json" >"$RUN/dns.log" 2>&1 &
echo $! > "$RUN/dns.pid"
# warren-ingress on port 8088 of the host (80 and 443 under systemd).
"$BIN/warren" ingress --api-socket "$RUN/ingress.sock" --http-listen 127.0.0.1:8088 \
  --mesh-status "$RUN/mesh-status.json" >"$RUN/ingress.log" 2>"$RUN/ingress.err" &
echo $! > "$RUN/ingress.pid"
for _ in $(seq 150); do
  "$BIN/warrenctl" node ls 2>/dev/null | grep -qi ready && [ -S "$RUN/agent.sock" ] && break
  sleep 0.2
done
run "$BIN/warrenctl" node ls

say "Building a busybox image (no registry needed) and loading it"
go run ./qa/testimage/mkimage -o "$RUN/busybox.tar" -name localhost/busybox:latest
run "$BIN/warrenctl" image load "$RUN/busybox.tar"

say "Deploying a web service: 3 replicas, published on port 8080"
run "$BIN/warrenctl" service create --name web --replicas 3 -p 8080:80 --limit-memory 32M \
  localhost/busybox sh -c 'echo "hello from $(hostname)" > /tmp/index.html && exec httpd -f -p 80 -h /tmp'
run "$BIN/warrenctl" service ls
run "$BIN/warrenctl" service ps web

say "Reaching it on the node: curl localhost:8080 (the port balances over the 3 tasks)"
for _ in 1 2 3 4 5 6; do curl -s --max-time 3 http://localhost:8080/; done

say "Reaching it from another network namespace, as another host would"
ip netns add "$CLIENT_NS"
ip link add warren-demo0 type veth peer name eth0 netns "$CLIENT_NS"
ip addr add 192.168.250.1/30 dev warren-demo0 && ip link set warren-demo0 up
ip -n "$CLIENT_NS" addr add 192.168.250.2/30 dev eth0
ip -n "$CLIENT_NS" link set eth0 up && ip -n "$CLIENT_NS" link set lo up
run ip netns exec "$CLIENT_NS" curl -s --max-time 3 http://192.168.250.1:8080/

say "HTTP routing by host name: warren-ingress sends web.demo to the web tasks"
run "$BIN/warrenctl" service update --detach --ingress-add host=web.demo,port=80,tls=none web
for _ in $(seq 50); do curl -sf --max-time 2 -H 'Host: web.demo' http://127.0.0.1:8088/ >/dev/null && break; sleep 0.2; done
run curl -s --max-time 3 -H 'Host: web.demo' http://127.0.0.1:8088/
run curl -s --max-time 3 -H 'Host: web.demo' http://127.0.0.1:8088/
run "$BIN/warrenctl" ingress ls

say "Service discovery: from inside a container, 'web' resolves to the healthy tasks"
task=$("$BIN/warrenctl" service ps web -q --no-trunc -f desired-state=running | head -n1)
run ctr --address "$RUN/containerd/containerd.sock" -n warren task exec --exec-id demo-lookup "$task" nslookup web

say "Killing one container's process: the restart policy brings the slot back"
task=$("$BIN/warrenctl" service ps web -q --no-trunc -f desired-state=running | head -n1)
pid=$(ctr --address "$RUN/containerd/containerd.sock" -n warren tasks ls | awk -v id="$task" '$1==id {print $2}')
run kill -9 "$pid"
for _ in $(seq 60); do
  [ "$("$BIN/warrenctl" service ls | awk '$2=="web"{print $4}')" = 3/3 ] && \
    "$BIN/warrenctl" service ps web | grep -q Failed && break
  sleep 0.5
done
run "$BIN/warrenctl" service ps web

say "The demo cluster is running. Try:"
cat <<TXT
  export WARREN_HOST=$WARREN_HOST
  bin/warrenctl service scale web=5
  bin/warrenctl service logs web
  bin/warrenctl service update --env-add GREETING=hi web
  bin/warrenctl node ls
  curl http://localhost:8080/
  curl -H 'Host: web.demo' http://127.0.0.1:8088/
  bin/warrenctl ingress ls
  make demo-stop        # stop it and remove everything it made
TXT

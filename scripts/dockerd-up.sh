#!/usr/bin/env bash
# Starts a Docker daemon for the test run only, leaving the machine's network alone: the daemon runs in a network
# namespace of its own (unshare --net), so its bridge and the ports it publishes exist only there, and it sets no
# iptables rules and no masquerading. Its state is in a directory of its own. Prints the DOCKER_HOST to use (its
# socket is a file, reachable from any namespace); the namespace is /proc/$(cat DIR/dockerd.pid)/ns/net, where a
# client reaches the containers' published ports (nsenter --net=...). `dockerd-down.sh DIR` stops it and removes
# the directory. Installs Debian's docker.io first when dockerd is missing.
# Usage: DIR=$(mktemp -d); export DOCKER_HOST=$(scripts/dockerd-up.sh "$DIR")
set -euo pipefail
dir=$1
if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd-up: installing docker.io" >&2
    apt-get update -qq >&2
    apt-get install -y -qq docker.io >/dev/null
fi
mkdir -p "$dir"
unshare --net --fork -- sh -c 'ip link set lo up && exec "$@"' sh \
    dockerd --iptables=false --ip-masq=false --storage-driver=vfs \
    --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    --host "unix://$dir/docker.sock" >"$dir/dockerd.log" 2>&1 &
for _ in $(seq 1 100); do
    if DOCKER_HOST="unix://$dir/docker.sock" docker info >/dev/null 2>&1; then
        echo "unix://$dir/docker.sock"
        exit 0
    fi
    sleep 0.2
done
echo "dockerd-up: the daemon did not come up; its log:" >&2
tail -20 "$dir/dockerd.log" >&2
exit 1

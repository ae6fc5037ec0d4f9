#!/usr/bin/env bash
# Stops a daemon started by dockerd-up.sh DIR and removes DIR.
set -uo pipefail
dir=$1
if [ -f "$dir/dockerd.pid" ]; then
    pid=$(cat "$dir/dockerd.pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
fi
# vfs layers of stopped containers can hold mounts briefly.
umount -R "$dir/exec" 2>/dev/null
rm -rf "$dir"

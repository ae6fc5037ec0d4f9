#!/usr/bin/env python3
"""Load benchmark of `pgshadow serve`: concurrent clients dry-run the seed incident over HTTP.

Usage: benches/load.py [--binary target/release/pgshadow] [--clients 8] [--runs 2000] [--serve-args "..."]

--serve-args passes more arguments to `pgshadow serve`, such as
"--shadow container --image pgshadow-test/postgres:18 --pull never" (the shadow's processes are then the
container's, not the server's children).

Starts the server on a free port with the seed-incident source, warms it up, then has CLIENTS threads send RUNS
dry-runs in all (keep-alive connections), and prints throughput and latency percentiles. Before and after, it reads
the server's resident memory, its child processes (the shadow's postgres and its backends), the entries of its
TMPDIR and the shadow's database count (from the pool metric and clones made), to show the process comes back to
where it started. Standard library only.
"""

import argparse
import http.client
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAN = json.dumps({"source": "seed", "plan": "DROP TABLE users CASCADE;"})


def children(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    parents = {}
    for line in out.splitlines():
        p, pp = line.split()
        parents.setdefault(int(pp), []).append(int(p))
    seen, todo = [], [pid]
    while todo:
        for c in parents.get(todo.pop(), []):
            seen.append(c)
            todo.append(c)
    return seen


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def snapshot(pid, tmp, address):
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("GET", "/v1/metrics")
    metrics = conn.getresponse().read().decode()
    pool = sum(int(l.split()[-1]) for l in metrics.splitlines() if l.startswith("pgshadow_pool_ready{"))
    databases = None
    for entry in os.listdir(tmp):
        socket_dir = os.path.join(tmp, entry)
        if os.path.exists(os.path.join(socket_dir, ".s.PGSQL.5432")):
            out = subprocess.run(["psql", "-h", socket_dir, "-U", "pgshadow_admin", "-d", "postgres", "-Atc",
                                  "SELECT count(*) FROM pg_database"], capture_output=True, text=True)
            databases = int(out.stdout.strip()) if out.returncode == 0 else None
    return {
        "rss_kib": rss_kib(pid),
        "databases": databases,
        "processes": len(children(pid)),
        "tmp_entries": len(os.listdir(tmp)),
        "pool_ready": pool,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "pgshadow"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--serve-args", default="", help="more arguments for pgshadow serve")
    ap.add_argument("--objects", type=int, default=9,
                    help="objects the CASCADE drops: 9, or 13 on PostgreSQL 18 (its NOT NULL constraints)")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="pgshadow-load-")
    os.chmod(tmp, 0o711)
    env = dict(os.environ, TMPDIR=tmp)
    config = tmp + ".toml"
    with open(config, "w") as f:
        f.write(f'max_concurrent = {args.clients}\npool_size = {args.clients}\n[[sources]]\nname = "seed"\n'
                f'schema = "{ROOT}/scenarios/seed-incident/schema.sql"\n')
    server = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:0", "--config", config,
                               *shlex.split(args.serve_args)],
                              env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    address = None
    for line in server.stderr:
        sys.stderr.write(line)
        if line.startswith("pgshadow serve: listening on http://"):
            address = line.split("http://")[1].split()[0]
            break
    if not address:
        sys.exit("the server did not start")
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    host, port = address.split(":")

    def client(n, latencies, failures):
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        for _ in range(n):
            start = time.perf_counter()
            conn.request("POST", "/v1/dry-runs", body=PLAN, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            latencies.append(time.perf_counter() - start)
            if response.status != 200 or f'"objects_dropped":{args.objects}'.encode() not in body:
                failures.append(response.status)

    def run(total):
        latencies, failures, threads = [], [], []
        per = total // args.clients
        for _ in range(args.clients):
            t = threading.Thread(target=client, args=(per, latencies, failures))
            threads.append(t)
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start, sorted(latencies), failures

    run(args.clients * 10)  # warm-up
    time.sleep(1)
    before = snapshot(server.pid, tmp, address)
    elapsed, latencies, failures = run(args.runs)
    time.sleep(2)  # let the pool refill and the used clones be dropped
    after = snapshot(server.pid, tmp, address)
    pct = lambda p: latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000
    print(f"{len(latencies)} dry-runs, {args.clients} clients: {len(latencies) / elapsed:.1f} per second; "
          f"p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms, p99 {pct(99):.1f} ms, max {latencies[-1] * 1000:.1f} ms; "
          f"{len(failures)} failures")
    print(f"before: {before}")
    print(f"after:  {after}")
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    left = os.listdir(tmp)
    print(f"exit {server.returncode}; TMPDIR entries left after SIGTERM: {left}")
    os.rmdir(tmp)
    os.remove(config)


if __name__ == "__main__":
    main()

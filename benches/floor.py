#!/usr/bin/env python3
"""The cost of a dry-run against the raw floor, measured side by side in one run (BENCHMARKS.md, issue 22's targets).

Usage: benches/floor.py [--binary target/dist/pgshadow] [--pg-bin /usr/lib/postgresql/15/bin] [--clients 4]
                        [--seconds 10] [--runs 40] [--customers 201000 | --no-big] [--out FILE]

On the fixture benches/floor/schema.sql (accounts -> transfers -> transfer_notes, ON DELETE CASCADE, a view and a
trigger), with the 50/50 mix of `DROP TABLE accounts CASCADE` and `DELETE FROM accounts WHERE id <= 7`:

1. the raw floor: a hand-run server with pgshadow's settings, loaded with the fixture; pgbench runs
   BEGIN/statement/ROLLBACK (each statement alone with one client, the mix with one and with --clients clients);
   `psql -f` of BEGIN/plan/ROLLBACK, wall time, process start included;
2. `pgshadow serve` on the same fixture: one dry-run at a time (HTTP round trip included), then --clients concurrent
   clients with a pool of as many clones (one connection per clone, as pgbench has one per client);
3. the CLI, warm: `pgshadow run` of the seed incident (scenarios/seed-incident, as the issue measured it) on its cached
   schema, its report on stdout as psql's output is (and, for comparison, written with --output), with the cluster
   kept warm (PGSHADOW_KEEP_WARM=30s) and with PGSHADOW_KEEP_WARM=0 (start and stop the cached cluster each run),
   against `psql -f` of BEGIN/its plan/ROLLBACK on the hand-run server holding its schema, run the same way (one run
   after each pause of --pause seconds, between the CLI's), and back to back for comparison;
4. measuring overhead on a DELETE that cascades to about 1.1 million rows (benches/e2e/generate.sql's shop, 201,000
   customers, about 1 GB): pgshadow's warm run minus its warm `SELECT 1;` run, against the statement as the report
   timed it on the shadow (the target), and both against the statement in psql on the hand-run server.

Prints one Markdown table with the ratios to the floor and whether each target is met. Standard library only; needs
pgbench, psql, pg_dump and the server binaries; as root, runs servers as the postgres OS user. Everything lives in one
temporary directory, removed at the end (the hand-run server and any keep-warm supervisor are stopped).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "benches", "floor", "schema.sql")
GENERATE = os.path.join(ROOT, "benches", "e2e", "generate.sql")
SEED_SCHEMA = os.path.join(ROOT, "scenarios", "seed-incident", "schema.sql")
SEED_PLAN = os.path.join(ROOT, "scenarios", "seed-incident", "plan.sql")
DROP = "DROP TABLE accounts CASCADE;"
DELETE = "DELETE FROM accounts WHERE id <= 7;"
IS_ROOT = os.geteuid() == 0


def log(message):
    print(f"floor: {message}", file=sys.stderr, flush=True)


def as_pg(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


class Server:
    """A hand-run server with the settings pgshadow gives its shadows (src/shadow/local.rs)."""

    def __init__(self, pg_bin, work):
        self.pg_bin, self.dir = pg_bin, os.path.join(work, "pg")
        os.mkdir(self.dir, 0o700)
        if IS_ROOT:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        subprocess.run(as_pg([f"{pg_bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                              "--locale=C", "--no-sync"]), check=True, stdout=subprocess.DEVNULL)
        opts = (f"-c listen_addresses='' -k {self.dir} -c port=5432 -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off "
                "-c track_functions=all -c jit=off")
        subprocess.run(as_pg([f"{pg_bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                              opts, "start"]), check=True, stdout=subprocess.DEVNULL)
        self.conn = ["-h", self.dir, "-p", "5432", "-U", "postgres"]

    def psql(self, *args, **kw):
        done = subprocess.run([f"{self.pg_bin}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *self.conn, *args],
                              capture_output=True, text=True, **kw)
        if done.returncode != 0:
            sys.exit(f"psql {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done

    def stop(self):
        subprocess.run(as_pg([f"{self.pg_bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def pgbench(server, work, scripts, clients, seconds):
    """tps, mean latency (ms) and every transaction's latency (ms)."""
    files = []
    for i, (sql, weight) in enumerate(scripts):
        path = os.path.join(work, f"bench-{i}.sql")
        with open(path, "w") as f:
            f.write(f"BEGIN;\n{sql}\nROLLBACK;\n")
        files += ["-f", f"{path}@{weight}"]
    logs = os.path.join(work, "pgbench-log")
    shutil.rmtree(logs, ignore_errors=True)
    os.mkdir(logs)
    out = subprocess.run([f"{server.pg_bin}/pgbench", "-n", *server.conn, "-c", str(clients), "-j", str(clients),
                          "-T", str(seconds), "-l", "--log-prefix", os.path.join(logs, "tx"), *files, "bench"],
                         check=True, capture_output=True, text=True).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    lat = []
    for name in os.listdir(logs):
        with open(os.path.join(logs, name)) as f:
            lat += [int(line.split()[2]) / 1000 for line in f if line.strip()]
    return tps, latency, lat


def timed(cmd, env=None, ok=(0,)):
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        sys.exit(f"{cmd[0]} exited with {done.returncode}: {done.stderr[-2000:]}")
    return elapsed * 1000


class Serve:
    def __init__(self, binary, work, clients):
        self.tmp = os.path.join(work, "serve-tmp")
        os.mkdir(self.tmp, 0o711)
        config = os.path.join(work, "serve.toml")
        with open(config, "w") as f:
            f.write(f'max_concurrent = {clients}\npool_size = {clients}\n[[sources]]\nname = "floor"\n'
                    f'schema = "{FIXTURE}"\n')
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--config", config],
                                     env=dict(os.environ, TMPDIR=self.tmp), stderr=subprocess.PIPE, text=True,
                                     cwd=work)
        address = None
        for line in self.proc.stderr:
            if "listening on http://" in line:
                address = line.split("http://")[1].split()[0]
                break
        if not address:
            sys.exit("pgshadow serve did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()
        self.host, self.port = address.split(":")

    def client(self):
        return http.client.HTTPConnection(self.host, int(self.port), timeout=120)

    def dry_run(self, conn, sql):
        body = json.dumps({"source": "floor", "plan": sql})
        start = time.perf_counter()
        conn.request("POST", "/v1/dry-runs", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200:
            sys.exit(f"serve answered {response.status}: {data[:500]!r}")
        report = json.loads(data)
        summary = report["summary"]
        if sql == DROP and not summary["objects_dropped"] or sql == DELETE and not summary["rows_deleted"]:
            sys.exit(f"unexpected report for {sql}: {summary}")
        return elapsed, report

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def stop_supervisors(cache):
    """SIGTERM to every keep-warm supervisor of the cache, then wait for its pid file to go."""
    for dirpath, _, files in os.walk(cache):
        if "warm.pid" in files:
            path = os.path.join(dirpath, "warm.pid")
            try:
                pid = int(open(path).read().strip())
                os.kill(pid, signal.SIGTERM)
                for _ in range(300):
                    os.kill(pid, 0)
                    time.sleep(0.1)
            except (OSError, ValueError):
                pass


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    # The dist build (`cargo build --profile dist`), as a team installs it, else the release build.
    dist = os.path.join(target, "dist", "pgshadow")
    ap.add_argument("--binary", default=dist if os.path.exists(dist) else os.path.join(target, "release", "pgshadow"))
    ap.add_argument("--pg-bin", default=os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=10, help="seconds of each pgbench and of serve's throughput")
    ap.add_argument("--runs", type=int, default=40, help="single dry-runs per statement, and warm CLI runs")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between warm CLI runs")
    ap.add_argument("--customers", type=int, default=201000, help="size of the generated shop (1.1 M rows deleted)")
    ap.add_argument("--no-big", action="store_true", help="skip the measuring overhead on the generated shop")
    ap.add_argument("--out", help="also write the table to this file")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    work = tempfile.mkdtemp(prefix="pgshadow-floor-")
    os.chmod(work, 0o711)
    rows, server, serve = [], None, None
    row = lambda name, figure, how: rows.append((name, figure, how))
    try:
        # --- 1. the raw floor ---------------------------------------------------------------------------------------
        log("hand-run server: initdb, fixture")
        server = Server(args.pg_bin, work)
        server.psql("-d", "postgres", "-c", "CREATE DATABASE bench")
        server.psql("-d", "bench", "-f", FIXTURE)
        raw = {}
        for name, sql in (("drop", DROP), ("delete", DELETE)):
            tps, latency, _ = pgbench(server, work, [(sql, 1)], 1, args.seconds)
            raw[name] = latency
            row(f"raw `{sql}`, one client", f"{latency:.2f} ms ({tps:.0f} tps)",
                "pgbench BEGIN/statement/ROLLBACK, latency average")
        raw_mix1, _, _ = pgbench(server, work, [(DROP, 1), (DELETE, 1)], 1, args.seconds)
        row("raw mix, one client", f"{raw_mix1:.1f} tps", "pgbench, the 50/50 mix")
        raw_mixn, _, lat = pgbench(server, work, [(DROP, 1), (DELETE, 1)], args.clients, args.seconds)
        row(f"raw mix, {args.clients} clients", f"{raw_mixn:.1f} tps, p99 {pct(lat, 99):.1f} ms",
            "pgbench, one database: the DROP's lock serializes the clients")
        plan_file = os.path.join(work, "plan.sql")
        with open(plan_file, "w") as f:
            f.write(DELETE + "\n")
        psql_file = os.path.join(work, "psql-plan.sql")
        with open(psql_file, "w") as f:
            f.write(f"BEGIN;\n{DELETE}\nROLLBACK;\n")
        server.psql("-d", "postgres", "-c", "CREATE DATABASE seed")
        server.psql("-d", "seed", "-f", SEED_SCHEMA)
        with open(psql_file, "w") as f:
            f.write("BEGIN;\n" + open(SEED_PLAN).read() + "\nROLLBACK;\n")
        psql_run = [f"{args.pg_bin}/psql", "-X", "-q", *server.conn, "-d", "seed", "-f", psql_file]
        psql = [timed(psql_run, ok=(0, 1, 3)) for _ in range(args.runs)]
        psql_hot = statistics.median(psql)
        row("`psql -f` BEGIN/seed-incident plan/ROLLBACK, back to back", f"{psql_hot:.1f} ms",
            f"wall time, median of {args.runs} runs one right after the other (the server stays up for 3.)")

        # --- 2. serve -----------------------------------------------------------------------------------------------
        log("pgshadow serve")
        serve = Serve(binary, work, args.clients)
        conn = serve.client()
        for _ in range(10):
            serve.dry_run(conn, DROP)
            serve.dry_run(conn, DELETE)
        single = {}
        for name, sql in (("drop", DROP), ("delete", DELETE)):
            times, inner = [], []
            for _ in range(args.runs):
                elapsed, report = serve.dry_run(conn, sql)
                times.append(elapsed)
                inner.append(report["statements"][0]["duration_ms"])
            single[name] = statistics.median(times)
            row(f"serve, one dry-run at a time: `{sql}`",
                f"{single[name]:.1f} ms (raw + {single[name] - raw[name]:.1f} ms)",
                f"HTTP round trip, median of {args.runs}; the statement itself {statistics.median(inner):.2f} ms")
        latencies, lock = [], threading.Lock()
        stop_at = time.perf_counter() + args.seconds

        def client(n):
            c = serve.client()
            i = n
            while time.perf_counter() < stop_at:
                elapsed, _ = serve.dry_run(c, DROP if i % 2 == 0 else DELETE)
                i += 1
                with lock:
                    latencies.append(elapsed)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        serve_tps = len(latencies) / (time.perf_counter() - start)
        serve_p99 = pct(latencies, 99)
        row(f"serve, mix, {args.clients} clients", f"{serve_tps:.1f} dry-runs/s, p50 {pct(latencies, 50):.1f} ms, "
            f"p99 {serve_p99:.1f} ms", f"pool of {args.clients} clones, for {args.seconds} s")
        serve.stop()
        serve = None

        # --- 3. the CLI, warm ---------------------------------------------------------------------------------------
        log("the CLI, warm")
        cache, tmp = os.path.join(work, "cache"), os.path.join(work, "cli-tmp")
        os.mkdir(cache, 0o711)
        os.mkdir(tmp, 0o711)
        env = dict(os.environ, PGSHADOW_CACHE_DIR=cache, TMPDIR=tmp)
        # The report goes to stdout (discarded), as psql's output does; to a file too, for comparison: replacing the
        # last run's file frees its blocks, which an ext4 mounted with `discard` does synchronously.
        run = [binary, "run", SEED_PLAN, "--schema", SEED_SCHEMA, "-q", "--format", "json"]
        to_file = [*run, "--output", os.path.join(work, "report.json")]
        cli, paced = {}, []
        for keep in ("30s", "0"):
            env["PGSHADOW_KEEP_WARM"] = keep
            timed(to_file, env, ok=(0, 1))  # the first run fills the cache (and leaves the cluster warm)
            times, file_times = [], []
            for _ in range(args.runs):
                # A pause, as between a person's or a CI step's runs: the supervisor makes the next clone meanwhile.
                time.sleep(args.pause)
                times.append(timed(run, env, ok=(0, 1)))
                if keep != "0":
                    time.sleep(args.pause)
                    file_times.append(timed(to_file, env, ok=(0, 1)))
                    # psql the same way, between them: after the same pause, so that both start as cold.
                    time.sleep(args.pause)
                    paced.append(timed(psql_run, ok=(0, 1, 3)))
            cli[keep] = statistics.median(times)
            if file_times:
                cli["file"] = statistics.median(file_times)
            stop_supervisors(cache)
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
        server = None
        psql_ms = statistics.median(paced)
        row("`psql -f` BEGIN/seed-incident plan/ROLLBACK, paced as the CLI", f"{psql_ms:.1f} ms",
            f"wall time, median of {args.runs}, each {args.pause} s after the CLI's last run, as the CLI's runs are")
        row("CLI warm run, seed incident (cluster kept warm)", f"{cli['30s']:.1f} ms",
            f"`pgshadow run` wall time, report on stdout, median of {args.runs}, {args.pause} s apart")
        row("CLI warm run, report written with --output", f"{cli['file']:.1f} ms",
            "the same, the report replacing the last run's file")
        row("CLI warm run, PGSHADOW_KEEP_WARM=0", f"{cli['0']:.1f} ms",
            "the cached cluster started and stopped by each run")

        # --- 4. measuring overhead on 1.1 M rows --------------------------------------------------------------------
        overhead = None
        if not args.no_big:
            log(f"generated shop: {args.customers} customers")
            server = Server(args.pg_bin, work)
            server.psql("-d", "postgres", "-c", "CREATE DATABASE shop")
            server.psql("-d", "shop", "-v", f"customers={args.customers}", "-f", GENERATE)
            big_plan = "DELETE FROM customers WHERE id % 10 = 0;"
            timing = os.path.join(work, "timing.sql")
            with open(timing, "w") as f:
                f.write(f"BEGIN;\n\\timing on\n{big_plan}\n\\timing off\nROLLBACK;\n")
            psql_big = []
            for _ in range(5):
                out = server.psql("-d", "shop", "-f", timing).stdout
                psql_big.append(float(re.search(r"Time: ([\d.]+) ms", out).group(1)))
            dump = os.path.join(work, "shop.dump")
            subprocess.run([f"{args.pg_bin}/pg_dump", *server.conn, "-Fc", "-f", dump, "shop"], check=True)
            os.chmod(dump, 0o644)
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
            server = None
            big_file, select1 = os.path.join(work, "big.sql"), os.path.join(work, "select1.sql")
            with open(big_file, "w") as f:
                f.write(big_plan + "\n")
            with open(select1, "w") as f:
                f.write("SELECT 1;\n")
            env["PGSHADOW_KEEP_WARM"] = "0"
            report_file = os.path.join(work, "big.json")
            big = lambda plan: timed([binary, "run", plan, "--snapshot", dump, "-q", "--format", "json", "--output",
                                      report_file, "--timeout", "3600"], env, ok=(0, 1))
            big(select1)  # restores the snapshot into the cache
            plan_ms, sel_ms, stmt_ms = [], [], []
            for _ in range(5):
                plan_ms.append(big(big_file))
                with open(report_file) as f:
                    report = json.load(f)
                stmt_ms.append(report["statements"][0]["duration_ms"])
                deleted = report["summary"]["rows_deleted"]
                sel_ms.append(big(select1))
            measured = statistics.median(plan_ms) - statistics.median(sel_ms)
            base, on_shadow = statistics.median(psql_big), statistics.median(stmt_ms)
            # What measuring adds: the run beyond the statement as it ran on the shadow. How the statement itself
            # runs on a shadow just started (its buffers cold) against the hand-run server is shown apart.
            overhead = (measured - on_shadow) / on_shadow * 100
            row("1.1 M-row DELETE in psql", f"{base:.0f} ms", "\\timing, BEGIN/DELETE/ROLLBACK, median of 5")
            row("the same on pgshadow's shadow", f"{on_shadow:.0f} ms ({(on_shadow - base) / base * 100:+.1f} %)",
                f"report's duration_ms, {deleted} rows deleted; against psql on the hand-run server")
            row("the same plus everything pgshadow measures", f"{measured:.0f} ms ({(measured - base) / base * 100:+.1f} %)",
                "median warm run of the plan minus median warm run of `SELECT 1;`; against psql")

        # --- ratios and targets -------------------------------------------------------------------------------------
        worst_single = max(single["drop"] - raw["drop"], single["delete"] - raw["delete"])
        ratio_tps = serve_tps / raw_mixn
        ratio_cli = cli["30s"] / psql_ms
        met = lambda ok: "**met**" if ok else "**not met**"
        row("target: warm serve dry-run ≤ raw + 5 ms", f"+{worst_single:.1f} ms {met(worst_single <= 5)}",
            "the worse of the two statements")
        row("target: serve ≥ 50 % of raw pgbench, p99 < 200 ms",
            f"{ratio_tps * 100:.1f} %, p99 {serve_p99:.0f} ms {met(ratio_tps >= 0.5 and serve_p99 < 200)}",
            f"{serve_tps:.1f} against {raw_mixn:.1f} tps, {args.clients} clients each")
        row("target: warm CLI ≤ 1.5x `psql -f`", f"{ratio_cli:.2f}x {met(ratio_cli <= 1.5)}",
            f"{cli['30s']:.1f} against {psql_ms:.1f} ms, both paced; {cli['30s'] / psql_hot:.2f}x psql back to back")
        if overhead is not None:
            row("target: measuring overhead ≤ 10 %", f"{overhead:+.1f} % {met(overhead <= 10)}",
                "(statement + measuring − statement) / statement, the statement as the report timed it")
    finally:
        if serve:
            serve.stop()
        if server:
            server.stop()
        stop_supervisors(os.path.join(work, "cache"))
        shutil.rmtree(work, ignore_errors=True)
    load = open("/proc/loadavg").read().split()[:3]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    version = subprocess.run([f"{args.pg_bin}/postgres", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores ({cpu}); "
             f"load average at the end {' '.join(load)}; {version}; binary {binary}", "",
             "| benchmark | figure | how |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()

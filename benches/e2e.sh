#!/usr/bin/env bash
# End-to-end benchmark of the pgshadow CLI on this machine; prints one Markdown table.
#
#   benches/e2e.sh [--size-mb N] [--out FILE] [--build] [--keep]
#
#   --size-mb N   size of the generated snapshot database, in MB of pg_database_size (default 1024)
#   --out FILE    also write the output (machine + table) to FILE
#   --build       rebuild pgshadow first (default: build only when the binary is missing)
#   --keep        keep the private directory (dumps, reports, pgshadow's stderr, caches) for a look afterwards
#
# What it measures, all in one run:
#   1. scenarios/seed-incident (--schema) and scenarios/archive-with-data (--snapshot): cold (--no-cache, median of
#      5), first cached run (a fresh empty --cache-dir each time, median of 3), warm (a primed --cache-dir, median
#      of 10);
#   2. a generated shop database of about N MB (customers -> orders -> order_lines, ON DELETE CASCADE), dumped with
#      pg_dump -Fc and -Fd on a hand-run PostgreSQL: raw pg_restore (parallel -Fd, single-job -Fc, parallel -Fc),
#      pgshadow cold / first cached / warm on the -Fc archive, and the overhead of measuring a DELETE that cascades
#      to ~10% of the rows (psql in a rolled-back transaction vs pgshadow on the warm cached shadow).
#
# Environment: PG_BIN (default /usr/lib/postgresql/15/bin), PGSHADOW_BENCH_TARGET_DIR (default
# /var/tmp/pgshadow-bench-target, the cargo target dir). Everything it makes lives in one mktemp -d directory under
# /tmp (the hand-run server, dumps, pgshadow's caches and TMPDIR), removed on every exit path.
set -euo pipefail
export LC_ALL=C NO_COLOR=1
unset RUST_LOG PGSHADOW_POLICY PGSHADOW_CACHE_DIR PGSHADOW_PG_BIN PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS=$ROOT/benches/e2e
# shellcheck source=benches/e2e/common.sh
source "$HELPERS/common.sh"
bench_args e2e.sh "$@"
STATS=$HELPERS/stats.py
TARGET_DIR=${PGSHADOW_BENCH_TARGET_DIR:-/var/tmp/pgshadow-bench-target}
PGSHADOW=$TARGET_DIR/release/pgshadow
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
NPROC=$(nproc)

# --- prerequisites -------------------------------------------------------------------------------------------------

for tool in python3 realpath mktemp runuser; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
for tool in initdb postgres pg_ctl psql pg_dump pg_restore; do
    [[ -x $PG_BIN/$tool ]] || die "$PG_BIN/$tool is missing (set PG_BIN to the PostgreSQL 15 binaries)"
done
build_pgshadow "$ROOT" "$TARGET_DIR" "$BUILD"
for f in "$ROOT"/scenarios/seed-incident/{plan,schema}.sql "$ROOT"/scenarios/archive-with-data/{plan.sql,snapshot.dump} \
    "$HELPERS/generate.sql" "$STATS"; do
    [[ -r $f ]] || die "$f is missing"
done

# --- the private directory and cleanup -----------------------------------------------------------------------------

bench_workdir pgshadow-e2e
mkdir -m 0711 "$WORK/tmp" "$WORK/caches" "$WORK/runs"
mkdir -m 0755 "$WORK/dumps" "$WORK/cwd"
# pgshadow reads ./pgshadow.toml as its policy: run everything from an empty directory.
cd "$WORK/cwd"
ROWS=$WORK/rows.tsv
: >"$ROWS"
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$ROWS"; }
RUN_N=0

# --- running pgshadow ----------------------------------------------------------------------------------------------

# pgshadow_run NAME ARGS...: one timed `pgshadow run ARGS --format json --output FILE`, exit 0 or 1 (a verdict).
# Sets WALL (seconds), REPORT (the JSON report) and ERR (its stderr).
pgshadow_run() {
    local name=$1 rc=0 t0 t1
    shift
    RUN_N=$((RUN_N + 1))
    REPORT=$WORK/runs/$RUN_N-$name.json
    ERR=$WORK/runs/$RUN_N-$name.stderr
    t0=$EPOCHREALTIME
    TMPDIR=$WORK/tmp "$PGSHADOW" run "$@" --pg-bin "$PG_BIN" --format json --output "$REPORT" \
        >"$WORK/runs/$RUN_N-$name.stdout" 2>"$ERR" </dev/null || rc=$?
    t1=$EPOCHREALTIME
    if ((rc == 130 || rc == 143)); then
        log "pgshadow was interrupted ($rc)"
        exit "$rc"
    fi
    if ((rc != 0 && rc != 1)); then
        log "pgshadow run $* exited with $rc; its stderr:"
        tail -n 40 "$ERR" >&2
        exit 2
    fi
    [[ -s $REPORT ]] || die "pgshadow run $* wrote no report"
    WALL=$(python3 -c "print($t1 - $t0)")
}

# A fresh, empty cache directory (0711: the postgres OS user must get through to the cluster pgshadow makes in it).
new_cache() {
    CACHE=$(mktemp -d "$WORK/caches/c.XXXXXX")
    chmod 0711 "$CACHE"
}

# scenario NAME PLAN SOURCE-ARGS...: cold x5, first cached x3, warm x10.
scenario() {
    local name=$1 plan=$2 i
    shift 2
    local cold=() first=() warm=() how_src="$*"
    how_src=${how_src//$ROOT\//}
    log "$name: cold x5"
    for i in 1 2 3 4 5; do
        pgshadow_run "$name-cold" "$plan" "$@" --no-cache
        cold+=("$WALL")
    done
    log "$name: first cached run x3"
    for i in 1 2 3; do
        new_cache
        pgshadow_run "$name-first" "$plan" "$@" --cache-dir "$CACHE"
        first+=("$WALL")
    done
    log "$name: warm x10"
    for i in $(seq 10); do
        pgshadow_run "$name-warm" "$plan" "$@" --cache-dir "$CACHE"
        warm+=("$WALL")
    done
    local verdict
    verdict=$(python3 "$STATS" json "$REPORT" verdict)
    local cmd="pgshadow run ${plan#"$ROOT"/} $how_src"
    row "$name: cold" "$(python3 "$STATS" time "${cold[@]}")" \
        "wall time of \`$cmd --no-cache\` (new cluster: initdb, start, load, dry-run, remove)"
    row "$name: first cached run" "$(python3 "$STATS" time "${first[@]}")" \
        "wall time of \`$cmd --cache-dir <fresh empty dir>\`, a new dir each time (initdb into the cache, load into a template)"
    row "$name: warm" "$(python3 "$STATS" time "${warm[@]}")" \
        "wall time of \`$cmd --cache-dir <primed dir>\` (start the cached cluster, dry-run in the template); verdict $verdict"
}

# --- the machine ---------------------------------------------------------------------------------------------------

COMMIT=$(git --no-optional-locks -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
if [[ -n $(git --no-optional-locks -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    DIRTY=" (working tree has uncommitted changes)"
fi
STALE=""
if [[ -n $(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$PGSHADOW" -print -quit 2>/dev/null) ]]; then
    STALE=" — sources changed since it was built; rerun with --build to measure them"
fi
MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
HEADER=$WORK/header.md
{
    echo "# pgshadow end-to-end benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), host: $(hostname)"
    echo "- machine: nproc $NPROC${CPU:+ ($CPU)}, memory $MEM, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- PostgreSQL: $("$PG_BIN/postgres" --version) ($PG_BIN); running as $(id -un)$( ((IS_ROOT)) && echo ', servers as the postgres OS user')"
    echo "- pgshadow: commit $COMMIT$DIRTY; binary $PGSHADOW built $(date -r "$PGSHADOW" '+%Y-%m-%d %H:%M')$STALE"
    echo "- snapshot size asked: --size-mb $SIZE_MB"
} >"$HEADER"
cat "$HEADER" >&2

# --- 1. the scenarios ----------------------------------------------------------------------------------------------

S=$ROOT/scenarios
scenario seed-incident "$S/seed-incident/plan.sql" --schema "$S/seed-incident/schema.sql"
scenario archive-with-data "$S/archive-with-data/plan.sql" --snapshot "$S/archive-with-data/snapshot.dump"

# --- 2. the generated snapshot -------------------------------------------------------------------------------------

hand_run_server

CUSTOMERS=$(shop_customers "$SIZE_MB")
log "generating the shop database: $CUSTOMERS customers (about $SIZE_MB MB)"
sql -d postgres -c "CREATE DATABASE shop"
timed sql -d shop -v customers="$CUSTOMERS" -f "$HELPERS/generate.sql" >/dev/null
GEN_S=$T
read -r DB_BYTES N_CUST N_ORDERS N_LINES DEL_CUST DEL_ORDERS DEL_LINES < <(sql -d shop -At -F ' ' -c "
    SELECT pg_database_size('shop'),
           (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT count(*) FROM order_lines),
           (SELECT count(*) FROM customers WHERE id % 10 = 0),
           (SELECT count(*) FROM orders WHERE customer_id % 10 = 0),
           (SELECT count(*) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.customer_id % 10 = 0)")
DB_MB=$(python3 -c "print(f'{$DB_BYTES / 1048576:.0f}')")
DEL_TOTAL=$((DEL_CUST + DEL_ORDERS + DEL_LINES))
log "shop: $DB_MB MB; $N_CUST customers, $N_ORDERS orders, $N_LINES order lines; the plan deletes $DEL_CUST + $DEL_ORDERS + $DEL_LINES rows"

PLAN=$WORK/dumps/plan.sql
echo "DELETE FROM customers WHERE id % 10 = 0;" >"$PLAN"
SELECT1=$WORK/dumps/select1.sql
echo "SELECT 1;" >"$SELECT1"
DUMP=$WORK/dumps/snap.dump
DUMPDIR=$WORK/dumps/snap.dir
log "pg_dump -Fc and -Fd"
timed "$PG_BIN/pg_dump" "${PGCONN[@]}" -Fc -f "$DUMP" shop
DUMP_FC_S=$T
timed "$PG_BIN/pg_dump" "${PGCONN[@]}" -Fd -j "$NPROC" -f "$DUMPDIR" shop
DUMP_FD_S=$T
chmod -R a+rX "$WORK/dumps"
DUMP_MB=$(python3 -c "import os; print(f'{os.path.getsize(\"$DUMP\") / 1048576:.0f}')")
row "generated snapshot" "$DB_MB MB database, $DUMP_MB MB -Fc archive" \
    "pg_database_size of a generated shop: $N_CUST customers → $N_ORDERS orders → $N_LINES order_lines (ON DELETE CASCADE, FK indexes); generated in $(python3 "$STATS" time "$GEN_S"), pg_dump -Fc $(python3 "$STATS" time "$DUMP_FC_S"), pg_dump -Fd -j $NPROC $(python3 "$STATS" time "$DUMP_FD_S")"

log "raw pg_restore -j $NPROC of the -Fd archive"
sql -d postgres -c "CREATE DATABASE restore_fd"
timed "$PG_BIN/pg_restore" "${PGCONN[@]}" -j "$NPROC" -d restore_fd "$DUMPDIR"
row "raw pg_restore -Fd -j $NPROC" "$(python3 "$STATS" time "$T")" \
    "\`pg_restore -j $NPROC -d <fresh db>\` of the -Fd archive into the hand-run server (pgshadow's settings: fsync=off, wal_level=minimal, ...)"
sql -d postgres -c "DROP DATABASE restore_fd"

log "raw pg_restore -j $NPROC of the -Fc archive"
sql -d postgres -c "CREATE DATABASE restore_fc_j"
timed "$PG_BIN/pg_restore" "${PGCONN[@]}" -j "$NPROC" -d restore_fc_j "$DUMP"
row "raw pg_restore -Fc -j $NPROC" "$(python3 "$STATS" time "$T")" \
    "\`pg_restore -j $NPROC -d <fresh db>\` of the -Fc archive (what pgshadow runs: jobs = available parallelism)"
sql -d postgres -c "DROP DATABASE restore_fc_j"

log "raw single-job pg_restore of the -Fc archive"
sql -d postgres -c "CREATE DATABASE restore_fc"
timed "$PG_BIN/pg_restore" "${PGCONN[@]}" -d restore_fc "$DUMP"
row "raw pg_restore -Fc, one job" "$(python3 "$STATS" time "$T")" "\`pg_restore -d <fresh db>\` of the -Fc archive"

log "psql: the plan in a rolled-back transaction x5 on the freshly restored database"
PSQL_MS=()
for i in 1 2 3 4 5; do
    printf 'BEGIN;\n\\timing on\n%s\n\\timing off\nROLLBACK;\n' "$(cat "$PLAN")" >"$WORK/psql-plan.sql"
    sql -d restore_fc -f "$WORK/psql-plan.sql" >"$WORK/psql-$i.out" 2>&1 || { cat "$WORK/psql-$i.out" >&2; die "psql failed"; }
    PSQL_MS+=("$(python3 "$STATS" psql-time "$WORK/psql-$i.out")")
done
PSQL_MED=$(python3 "$STATS" median "${PSQL_MS[@]}")
sql -d postgres -c "DROP DATABASE restore_fc"

# The hand-run server is not needed any more: stop it, so that it does not compete with the shadows.
stop_hand_run_server

log "pgshadow cold on the -Fc archive"
pgshadow_run gen-cold "$PLAN" --snapshot "$DUMP" --no-cache -v --timeout 7200
COLD_WALL=$WALL
COLD_RESTORE=$(python3 "$STATS" restore-seconds "$ERR") || COLD_RESTORE=n/a
ROWS_DELETED=$(python3 "$STATS" json "$REPORT" summary.rows_deleted)
row "pgshadow on the snapshot: cold" "$(python3 "$STATS" time "$COLD_WALL")" \
    "wall time of \`pgshadow run plan.sql --snapshot snap.dump --no-cache -v\` (plan: \`$(cat "$PLAN")\`; measured $ROWS_DELETED rows deleted, expected $DEL_TOTAL)"
row "pgshadow on the snapshot: cold, restore alone" "$(python3 "$STATS" time "$COLD_RESTORE")" \
    "the \`archive restored ... seconds=X\` line of that run's -v stderr (its pg_restore -j $NPROC)"

log "pgshadow first cached run on the -Fc archive"
new_cache
pgshadow_run gen-first "$PLAN" --snapshot "$DUMP" --cache-dir "$CACHE" -v --timeout 7200
FIRST_WALL=$WALL
FIRST_RESTORE=$(python3 "$STATS" restore-seconds "$ERR") || FIRST_RESTORE=n/a
row "pgshadow on the snapshot: first cached run" "$(python3 "$STATS" time "$FIRST_WALL")" \
    "wall time of \`pgshadow run plan.sql --snapshot snap.dump --cache-dir <fresh empty dir>\`; its restore alone: $(python3 "$STATS" time "$FIRST_RESTORE")"

log "pgshadow warm on the -Fc archive x5, and the plan SELECT 1 x5"
WARM=() STMT_MS=() SEL=()
for i in 1 2 3 4 5; do
    pgshadow_run gen-warm "$PLAN" --snapshot "$DUMP" --cache-dir "$CACHE" --timeout 7200
    WARM+=("$WALL")
    STMT_MS+=("$(python3 "$STATS" json "$REPORT" statements.0.duration_ms)")
    # Interleaved with the plan's runs, so that both see the same conditions.
    pgshadow_run gen-select1 "$SELECT1" --snapshot "$DUMP" --cache-dir "$CACHE" --timeout 7200
    SEL+=("$WALL")
done
WARM_MED=$(python3 "$STATS" median "${WARM[@]}")
SEL_MED=$(python3 "$STATS" median "${SEL[@]}")
MEASURED_MS=$(python3 -c "print(($WARM_MED - $SEL_MED) * 1000)")
row "pgshadow on the snapshot: warm" "$(python3 "$STATS" time "${WARM[@]}")" \
    "wall time of \`pgshadow run plan.sql --snapshot snap.dump --cache-dir <primed dir>\`"
row "pgshadow on the snapshot: warm, plan \`SELECT 1;\`" "$(python3 "$STATS" time "${SEL[@]}")" \
    "the same with the plan \`SELECT 1;\`: what a warm run on this snapshot costs whatever the plan (start, baseline, stop)"
row "overhead: psql statement" "$(python3 "$STATS" ms "${PSQL_MS[@]}")" \
    "\`$(cat "$PLAN")\` in \`BEGIN; ... ROLLBACK;\` with \`psql -X -q\` on a freshly restored database of the hand-run server (\\timing of the statement alone)"
row "overhead: pgshadow statement" "$(python3 "$STATS" ms "${STMT_MS[@]}")" \
    "the warm runs' report \`statements[0].duration_ms\` (the statement alone, on the shadow)"
row "overhead: pgshadow statement + measuring" "$(python3 "$STATS" ms-derived "$MEASURED_MS")" \
    "median warm wall time of the plan minus median warm wall time of \`SELECT 1;\`"
row "overhead of measuring" "$(python3 "$STATS" overhead "$MEASURED_MS" "$PSQL_MED")" \
    "(statement + measuring − psql statement) / psql statement, on medians"

# --- the output ----------------------------------------------------------------------------------------------------

{
    cat "$HEADER"
    echo
    python3 "$STATS" table "$ROWS"
} >"$WORK/result.md"
cat "$WORK/result.md"
if [[ -n $OUT ]]; then
    cp -- "$WORK/result.md" "$OUT"
fi
log "done"

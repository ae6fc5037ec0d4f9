#!/usr/bin/env bash
# Estimate accuracy on a generated shop database: the truth against `--profile`, `--profile --synthesize` (100,000
# rows, cached after the first plan), `--sample 1` and `--sample 10`, for
# a set of plans (WHERE on dates, ids and statuses; cascades; whole-table operations). Prints one Markdown table.
#
#   benches/accuracy.sh [--size-mb N] [--out FILE] [--build] [--keep]
#
#   --size-mb N   size of the generated database, in MB of pg_database_size (default 1024)
#   --out FILE    also write the output (machine + tables) to FILE
#   --build       rebuild pgshadow first (default: build only when the binary is missing)
#   --keep        keep the private directory (dumps, profile, reports, stderr) for a look afterwards
#
# How each column is measured, all in one run, on the same generated database (benches/e2e/generate.sql: customers ->
# orders -> order_lines, ON DELETE CASCADE) served by a hand-run PostgreSQL:
#   truth      pgshadow on a `pg_dump -Fc` archive of the whole database (measured on all the rows: exact);
#   profile    pgshadow on its `pg_dump --schema-only` with the profile `pgshadow profile` took (default --values keys);
#   synthesize the same with `--synthesize` (the default 100,000 rows generated from the profile, scaled per table);
#   sample P   pgshadow `--from-url` of the server with `--sample P`.
# The figure compared is the rows a plan changes: updated + deleted + truncated, cascades included, over all tables
# (the report's `summary` for the truth, its `estimate` for the others). Ratio = estimate / truth.
#
# Environment: PG_BIN (default /usr/lib/postgresql/15/bin), PGSHADOW_BENCH_TARGET_DIR (default
# /var/tmp/pgshadow-bench-target, the cargo target dir).
set -euo pipefail
export LC_ALL=C NO_COLOR=1
unset RUST_LOG PGSHADOW_POLICY PGSHADOW_CACHE_DIR PGSHADOW_PG_BIN PGSHADOW_PROFILE PGHOST PGPORT PGUSER PGDATABASE \
    PGSERVICE PGOPTIONS DATABASE_URL

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS=$ROOT/benches/e2e
# shellcheck source=benches/e2e/common.sh
source "$HELPERS/common.sh"
bench_args accuracy.sh "$@"
STATS=$HELPERS/stats.py
TARGET_DIR=${PGSHADOW_BENCH_TARGET_DIR:-/var/tmp/pgshadow-bench-target}
PGSHADOW=$TARGET_DIR/release/pgshadow
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

for tool in python3 realpath mktemp runuser; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
for tool in initdb postgres pg_ctl psql pg_dump; do
    [[ -x $PG_BIN/$tool ]] || die "$PG_BIN/$tool is missing (set PG_BIN to the PostgreSQL binaries)"
done
build_pgshadow "$ROOT" "$TARGET_DIR" "$BUILD"

# The plans: a name, then the SQL. Customers have 1..9 orders (by id % 9) and orders 1..19 lines, created_at spread
# over 1,500 days from 2020-01-01; statuses are text (so the default profile keeps no values of them).
PLANS=(
    "delete-where-date" "DELETE FROM orders WHERE created_at < '2020-07-01';"
    "update-where-status" "UPDATE orders SET status = 'refunded' WHERE status = 'cancelled';"
    "update-where-range" "UPDATE order_lines SET quantity = quantity + 1 WHERE product_id BETWEEN 100 AND 349;"
    "update-where-number" "UPDATE orders SET total_cents = 0 WHERE total_cents > 90000;"
    "delete-cascade-ids" "DELETE FROM customers WHERE id <= 2000;"
    "delete-cascade-one" "DELETE FROM customers WHERE id = 4242;"
    "delete-cascade-date" "DELETE FROM customers WHERE created_at >= '2023-06-01';"
    "delete-no-where" "DELETE FROM orders;"
    "truncate" "TRUNCATE order_lines;"
    "delete-all-customers" "DELETE FROM customers;"
)

bench_workdir pgshadow-accuracy
mkdir -m 0711 "$WORK/tmp" "$WORK/caches" "$WORK/runs" "$WORK/cache"
mkdir -m 0755 "$WORK/dumps" "$WORK/cwd" "$WORK/plans"
# pgshadow reads ./pgshadow.toml as its policy: run everything from an empty directory.
cd "$WORK/cwd"

# run_report NAME ARGS...: `pgshadow run ARGS --format json --output FILE`, exit 0 or 1 (a verdict); sets REPORT.
run_report() {
    local name=$1 rc=0
    shift
    REPORT=$WORK/runs/$name.json
    TMPDIR=$WORK/tmp "$PGSHADOW" run "$@" --pg-bin "$PG_BIN" --format json --output "$REPORT" \
        >"$WORK/runs/$name.stdout" 2>"$WORK/runs/$name.stderr" </dev/null || rc=$?
    ((rc == 130 || rc == 143)) && exit "$rc"
    if ((rc != 0 && rc != 1)) || [[ ! -s $REPORT ]]; then
        log "pgshadow run $* exited with $rc; its stderr:"
        tail -n 40 "$WORK/runs/$name.stderr" >&2
        exit 2
    fi
}

hand_run_server
CUSTOMERS=$(shop_customers "$SIZE_MB")
log "generating the shop database: $CUSTOMERS customers (about $SIZE_MB MB)"
sql -d postgres -c "CREATE DATABASE shop"
sql -d shop -v customers="$CUSTOMERS" -f "$HELPERS/generate.sql" >/dev/null
DB_MB=$(sql -d shop -At -c "SELECT round(pg_database_size('shop') / 1048576.0)")
URL="host=$PGH port=5432 user=postgres dbname=shop"

log "profile"
timed "$PGSHADOW" profile --from-url "$URL" -o "$WORK/dumps/profile.json" -q
PROFILE_S=$T
PROFILE_KB=$(python3 -c "import os; print(round(os.path.getsize('$WORK/dumps/profile.json') / 1024))")
log "pg_dump --schema-only, pg_dump -Fc"
"$PG_BIN/pg_dump" "${PGCONN[@]}" --schema-only -f "$WORK/dumps/schema.sql" shop
"$PG_BIN/pg_dump" "${PGCONN[@]}" -Fc -f "$WORK/dumps/full.dump" shop
chmod -R a+rX "$WORK/dumps"

RESULTS=$WORK/results.tsv
: >"$RESULTS"
for ((i = 0; i < ${#PLANS[@]}; i += 2)); do
    name=${PLANS[i]} text=${PLANS[i + 1]}
    plan=$WORK/plans/$name.sql
    echo "$text" >"$plan"
    log "$name: truth"
    run_report "$name-truth" "$plan" --snapshot "$WORK/dumps/full.dump" --cache-dir "$WORK/cache" --timeout 7200
    truth=$(python3 "$STATS" changed "$REPORT" summary)
    log "$name: --profile"
    run_report "$name-profile" "$plan" --schema "$WORK/dumps/schema.sql" --profile "$WORK/dumps/profile.json" --no-cache
    profile=$(python3 "$STATS" changed "$REPORT" estimate)
    log "$name: --profile --synthesize"
    run_report "$name-synthesize" "$plan" --schema "$WORK/dumps/schema.sql" --profile "$WORK/dumps/profile.json" \
        --synthesize --cache-dir "$WORK/cache"
    synthesize=$(python3 "$STATS" changed "$REPORT" estimate)
    log "$name: --sample 1"
    run_report "$name-sample1" "$plan" --from-url "$URL" --sample 1 --no-cache --timeout 7200
    sample1=$(python3 "$STATS" changed "$REPORT" estimate)
    log "$name: --sample 10"
    run_report "$name-sample10" "$plan" --from-url "$URL" --sample 10 --no-cache --timeout 7200
    sample10=$(python3 "$STATS" changed "$REPORT" estimate)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$text" "$truth" "$profile" "$synthesize" "$sample1" "$sample10" \
        >>"$RESULTS"
done
stop_hand_run_server

{
    echo "# pgshadow estimate accuracy"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: nproc $(nproc), load average at start of output $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- PostgreSQL: $("$PG_BIN/postgres" --version); pgshadow commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- database: $DB_MB MB ($CUSTOMERS customers); profile: taken in $(python3 "$STATS" time "$PROFILE_S"), $PROFILE_KB KB"
    echo
    python3 "$STATS" accuracy "$RESULTS"
} >"$WORK/result.md"
cat "$WORK/result.md"
[[ -z $OUT ]] || cp -- "$WORK/result.md" "$OUT"
log "done"

#!/usr/bin/env bash
# Estimate accuracy of pgshadow on a generated shop database; prints one Markdown table.
#
#   benches/accuracy.sh [--size-mb N] [--out FILE] [--build]
#
#   --size-mb N   size of the generated database, in MB of pg_database_size (default 1024)
#   --out FILE    also write the output to FILE
#   --build       rebuild pgshadow first (default: build only when the binary is missing)
#
# For each plan (WHERE on dates, ids and statuses; cascades one and two levels deep; whole-table operations), the
# rows it deletes, truncates or updates are counted four ways: the truth, on the database itself (psql, in a
# transaction rolled back: pg_stat_xact_user_tables, and count(*) before a TRUNCATE); `--profile` (a schema-only
# dump and `pgshadow profile` of the database); `--sample 1` and `--sample 10` (`--from-url`). The table gives each
# estimate, its ratio to the truth, and per method the median and worst ratio (a ratio is estimate / truth, shown
# as a factor of at least 1 either way, so 2.0x means double or half). Also the time to profile and its size.
#
# Environment: PG_BIN (default /usr/lib/postgresql/15/bin), PGSHADOW (a pgshadow binary to use; default the release
# build in PGSHADOW_BENCH_TARGET_DIR, default /var/tmp/pgshadow-bench-target). Everything it makes lives in one
# mktemp -d directory under /tmp (the hand-run server, dumps, pgshadow's caches), removed on every exit path.
set -euo pipefail
export LC_ALL=C NO_COLOR=1
unset RUST_LOG PGSHADOW_POLICY PGSHADOW_CACHE_DIR PGSHADOW_PG_BIN PGSHADOW_PROFILE PGHOST PGPORT PGUSER PGDATABASE

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; }

SIZE_MB=1024
OUT=""
BUILD=0
while (($#)); do
    case $1 in
        --size-mb) SIZE_MB=${2:?--size-mb needs a number}; shift 2 ;;
        --size-mb=*) SIZE_MB=${1#*=}; shift ;;
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        --out=*) OUT=${1#*=}; shift ;;
        --build) BUILD=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
TARGET_DIR=${PGSHADOW_BENCH_TARGET_DIR:-/var/tmp/pgshadow-bench-target}
BIN=${PGSHADOW:-$TARGET_DIR/release/pgshadow}
# The generated shop's bytes per customer and the empty database's, as benches/e2e.sh measured them.
BYTES_PER_CUSTOMER=5300
EMPTY_DB_BYTES=7600000

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

for tool in initdb postgres pg_ctl psql pg_dump; do
    [[ -x $PG_BIN/$tool ]] || die "$PG_BIN/$tool is missing (set PG_BIN)"
done
if [[ $BUILD == 1 || ! -x $BIN ]]; then
    [[ -n ${PGSHADOW:-} ]] && die "$BIN is not an executable"
    log "building pgshadow (cargo build --release, target dir $TARGET_DIR)"
    (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --locked) >&2 || die "cargo build failed"
fi
IS_ROOT=0
if [[ $(id -u) == 0 ]]; then
    IS_ROOT=1
    id postgres >/dev/null 2>&1 || die "running as root needs the postgres OS user (initdb and postgres refuse root)"
fi
as_pg() { if ((IS_ROOT)); then runuser -u postgres -- "$@"; else "$@"; fi; }

WORK=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $WORK && -d $WORK ]]; then
        local pidfile
        while IFS= read -r -d '' pidfile; do
            as_pg "$PG_BIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w -t 30 stop >/dev/null 2>&1
        done < <(find "$WORK" -name postmaster.pid -print0 2>/dev/null)
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

WORK=$(mktemp -d /tmp/pgshadow-accuracy.XXXXXX)
chmod 0711 "$WORK"
mkdir -m 0711 "$WORK/tmp" "$WORK/cache"
mkdir -m 0700 "$WORK/pg"
mkdir -m 0755 "$WORK/cwd"
((IS_ROOT)) && chown postgres: "$WORK/pg"
cd "$WORK/cwd"
export TMPDIR=$WORK/tmp PGSHADOW_CACHE_DIR=$WORK/cache

PGH=$WORK/pg
as_pg "$PG_BIN/initdb" -D "$PGH/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
OPTS="-c listen_addresses='' -k $PGH -c port=5432 -c fsync=off -c synchronous_commit=off -c autovacuum=off"
as_pg "$PG_BIN/pg_ctl" -D "$PGH/data" -l "$PGH/server.log" -w -t 120 -o "$OPTS" start >/dev/null ||
    die "the hand-run server did not start"
sql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGH" -p 5432 -U postgres "$@"; }
URL="postgresql://postgres@/shop?host=$PGH&port=5432"

CUSTOMERS=$(((SIZE_MB * 1048576 - EMPTY_DB_BYTES) / BYTES_PER_CUSTOMER))
((CUSTOMERS >= 1000)) || CUSTOMERS=1000
log "generating the shop database: $CUSTOMERS customers (about $SIZE_MB MB)"
sql -d postgres -c "CREATE DATABASE shop"
sql -d shop -v customers="$CUSTOMERS" -f "$ROOT/benches/e2e/generate.sql" >/dev/null
sql -d shop -c "ANALYZE" >/dev/null
DB_MB=$(sql -d shop -At -c "SELECT round(pg_database_size('shop') / 1048576.0)")

log "profiling it"
t0=$EPOCHREALTIME
"$BIN" profile --from-url "$URL" -o "$WORK/profile.json" 2>"$WORK/profile.log" || { cat "$WORK/profile.log" >&2; die "pgshadow profile failed"; }
PROFILE_S=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
PROFILE_KB=$(($(stat -c %s "$WORK/profile.json") / 1024))
"$PG_BIN/pg_dump" --schema-only --no-owner -h "$PGH" -p 5432 -U postgres shop >"$WORK/structure.sql"

# The plans: WHERE on dates, ids, statuses; cascades; whole-table operations.
ID_HI=$((CUSTOMERS / 20))
PLANS=(
    "DELETE FROM orders WHERE created_at < '2021-01-01';"
    "UPDATE orders SET status = 'refunded' WHERE status = 'cancelled';"
    "DELETE FROM order_lines WHERE order_id BETWEEN 1000 AND 5000;"
    "DELETE FROM customers WHERE id <= $ID_HI;"
    "DELETE FROM customers WHERE created_at >= '2023-06-01';"
    "DELETE FROM customers WHERE id = 42;"
    "UPDATE order_lines SET quantity = 0 WHERE quantity IN (1, 2);"
    "TRUNCATE order_lines;"
    "DELETE FROM orders;"
    "UPDATE customers SET name = 'x';"
)

# The rows a plan changes on the database itself, in a transaction rolled back.
truth() {
    local plan=$1
    if [[ $plan == TRUNCATE* ]]; then
        local table=${plan#TRUNCATE }
        sql -d shop -At -c "SELECT count(*) FROM ${table%;}"
        return
    fi
    sql -d shop -At <<SQL | tail -n 1
BEGIN;
$plan
SELECT sum(n_tup_del + n_tup_upd) FROM pg_stat_xact_user_tables;
ROLLBACK;
SQL
}

# The rows a pgshadow report says the plan changes in production: its estimate, else what it measured.
changed() {
    python3 -c '
import json, sys
r = json.load(sys.stdin)
e, s = r.get("estimate"), r["summary"]
if e:
    total = None if e["rows_destroyed"] is None or e["rows_updated"] is None else e["rows_destroyed"] + e["rows_updated"]
else:
    total = s["rows_destroyed"] + s["rows_updated"] if s["rows_known"] else None
print("unknown" if total is None else total)'
}

estimate() {
    local plan=$1
    shift
    printf '%s\n' "$plan" >"$WORK/plan.sql"
    "$BIN" run "$WORK/plan.sql" "$@" --format json 2>>"$WORK/runs.log" | changed
}

ROWS=$WORK/rows.tsv
: >"$ROWS"
for plan in "${PLANS[@]}"; do
    log "$plan"
    t=$(truth "$plan")
    p=$(estimate "$plan" --schema "$WORK/structure.sql" --profile "$WORK/profile.json")
    s1=$(estimate "$plan" --from-url "$URL" --sample 1)
    s10=$(estimate "$plan" --from-url "$URL" --sample 10)
    printf '%s\t%s\t%s\t%s\t%s\n' "$plan" "$t" "$p" "$s1" "$s10" >>"$ROWS"
done

REPORT=$WORK/report.md
python3 - "$ROWS" "$DB_MB" "$PROFILE_S" "$PROFILE_KB" "$("$BIN" --version)" >"$REPORT" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
db_mb, profile_s, profile_kb, version = sys.argv[2:6]

def ratio(estimate, truth):
    if estimate == "unknown":
        return None
    e, t = max(int(estimate), 1), max(int(truth), 1)
    return max(e / t, t / e)

def cell(estimate, truth):
    r = ratio(estimate, truth)
    zero = " **(0 where the truth is not)**" if estimate == "0" and int(truth) > 0 else ""
    return f"{estimate}" if r is None else f"{int(estimate):,} ({r:.2f}x){zero}"

print(f"Estimate accuracy on a generated shop database of {db_mb} MB ({version}); profiled in {profile_s} s, "
      f"profile {profile_kb} kB.\n")
print("| plan | truth | `--profile` | `--sample 1` | `--sample 10` |")
print("|---|--:|--:|--:|--:|")
for plan, truth, *estimates in rows:
    print(f"| `{plan}` | {int(truth):,} | " + " | ".join(cell(e, truth) for e in estimates) + " |")
summary = []
for i in range(3):
    ratios = [ratio(r[2 + i], r[1]) for r in rows]
    known = [x for x in ratios if x is not None]
    unknown = len(ratios) - len(known)
    text = f"median {statistics.median(known):.2f}x, worst {max(known):.2f}x" if known else "no estimate"
    summary.append(text + (f", {unknown} unknown" if unknown else ""))
print("| **median / worst** | | " + " | ".join(summary) + " |")
PY
cat "$REPORT"
[[ -n $OUT ]] && cp "$REPORT" "$OUT"
exit 0

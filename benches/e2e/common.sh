# Shared by benches/e2e.sh and benches/accuracy.sh (sourced, not run): logging, the postgres OS user, the private
# directory with its cleanup on every exit path, and the hand-run PostgreSQL server the benchmarks generate data in.
#
# The sourcing script defines usage, calls bench_args with its arguments, and sets PG_BIN.

# bench_args NAME ARGS...: the options every benchmark script takes; sets SIZE_MB (default 1024, at least 20), OUT
# (resolved to an absolute path, writable), BUILD and KEEP (0 or 1). Exits 2 on a bad one, 0 after --help.
bench_args() {
    local name=$1
    shift
    SIZE_MB=1024 OUT="" BUILD=0 KEEP=0
    while (($#)); do
        case $1 in
            --size-mb) SIZE_MB=${2:?--size-mb needs a number}; shift 2 ;;
            --size-mb=*) SIZE_MB=${1#*=}; shift ;;
            --out) OUT=${2:?--out needs a file}; shift 2 ;;
            --out=*) OUT=${1#*=}; shift ;;
            --build) BUILD=1; shift ;;
            --keep) KEEP=1; shift ;;
            -h | --help) usage; exit 0 ;;
            *) echo "$name: unknown argument $1" >&2; usage >&2; exit 2 ;;
        esac
    done
    if ! [[ $SIZE_MB =~ ^[0-9]+$ ]] || ((SIZE_MB < 20)); then
        echo "$name: --size-mb must be a whole number of at least 20" >&2
        exit 2
    fi
    if [[ -n $OUT ]]; then
        # Resolved now: the scripts change directory later.
        OUT=$(realpath -m -- "$OUT")
        [[ -d $(dirname "$OUT") && -w $(dirname "$OUT") ]] || { echo "$name: cannot write $OUT" >&2; exit 2; }
    fi
}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 2; }

IS_ROOT=0
if [[ $(id -u) == 0 ]]; then
    IS_ROOT=1
    id postgres >/dev/null 2>&1 || die "running as root needs the postgres OS user (initdb and postgres refuse root)"
fi
# Runs a server program as the OS user that may run it.
as_pg() {
    if ((IS_ROOT)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# timed CMD...: runs CMD, sets T (seconds).
timed() {
    local t0=$EPOCHREALTIME
    "$@"
    T=$(python3 -c "print($EPOCHREALTIME - $t0)")
}

WORK=""
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $WORK && -d $WORK ]]; then
        # The hand-run server, then any shadow server a killed pgshadow left behind in our directory.
        local pidfile data
        while IFS= read -r -d '' pidfile; do
            data=$(dirname "$pidfile")
            as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1
        done < <(find "$WORK" -name postmaster.pid -print0 2>/dev/null)
        if ((KEEP)); then
            log "kept $WORK (remove it when done)"
        else
            rm -rf -- "$WORK"
        fi
    fi
    exit "$rc"
}

# bench_workdir PREFIX: the private directory WORK under /tmp, removed on every exit path.
bench_workdir() {
    trap bench_cleanup EXIT
    trap 'log "interrupted"; exit 130' INT
    trap 'log "terminated"; exit 143' TERM
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    # The postgres OS user must be able to enter it (the server's and pgshadow's directories are inside).
    chmod 0711 "$WORK"
}

# hand_run_server: initdb and start a server in $WORK/pg with pgshadow's shadow settings; sets PGH (its socket
# directory), SERVER_DATA, PGCONN (psql connection arguments) and defines sql.
hand_run_server() {
    PGH=$WORK/pg
    SERVER_DATA=$PGH/data
    mkdir -m 0700 "$PGH"
    ((IS_ROOT)) && chown postgres: "$PGH"
    log "hand-run server: initdb"
    as_pg "$PG_BIN/initdb" -D "$SERVER_DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync --no-instructions \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    # The settings pgshadow gives its shadows (src/shadow/local.rs), so that raw figures and pgshadow's compare.
    local opts="-c listen_addresses='' -k $PGH -c port=5432 -c fsync=off -c synchronous_commit=off"
    opts+=" -c full_page_writes=off -c wal_level=minimal -c max_wal_senders=0 -c autovacuum=off -c jit=off"
    as_pg "$PG_BIN/pg_ctl" -D "$SERVER_DATA" -l "$PGH/server.log" -w -t 120 -o "$opts" start >/dev/null ||
        { as_pg cat "$PGH/server.log" >&2 || true; die "the hand-run server did not start"; }
    PGCONN=(-h "$PGH" -p 5432 -U postgres)
}
sql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "${PGCONN[@]}" "$@"; }
stop_hand_run_server() {
    as_pg "$PG_BIN/pg_ctl" -D "$SERVER_DATA" -m fast -w stop >/dev/null
    rm -rf -- "$PGH"
}

# pg_database_size grows by this many bytes per generated customer (and its ~5 orders and ~50 order lines),
# measured with benches/e2e/generate.sql on PostgreSQL 15; an empty database is about 7.5 MB.
BYTES_PER_CUSTOMER=5300
EMPTY_DB_BYTES=7600000
# shop_customers SIZE_MB: how many customers make a shop of about SIZE_MB.
shop_customers() {
    local n=$((($1 * 1048576 - EMPTY_DB_BYTES) / BYTES_PER_CUSTOMER))
    ((n >= 1000)) || n=1000
    echo "$n"
}

# build_pgshadow ROOT TARGET_DIR FORCE: a release build of pgshadow when FORCE is 1 or none is there.
build_pgshadow() {
    if [[ $3 == 1 || ! -x $2/release/pgshadow ]]; then
        log "building pgshadow (cargo build --release, target dir $2)"
        (cd "$1" && CARGO_TARGET_DIR=$2 cargo build --release --locked) >&2 || die "cargo build failed"
    fi
    [[ -x $2/release/pgshadow ]] || die "$2/release/pgshadow was not built"
}

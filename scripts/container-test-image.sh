#!/usr/bin/env bash
# Builds a PostgreSQL container image without a registry, for the container provider's tests: a root filesystem
# holding a relocatable PostgreSQL build (from `pgshadow postgres install`), the shared libraries its programs need
# (found with ldd), /bin/sh and a few tools, a `postgres` user (uid 999, as in the official image), and an
# entrypoint that follows the official image's contract (PGDATA, POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_HOST_AUTH_METHOD; socket in /var/run/postgresql; port 5432), imported with `docker import`.
# Usage: scripts/container-test-image.sh BUILD_DIR TAG     (BUILD_DIR holds bin/ lib/ share/)
set -euo pipefail
build=$(cd "$1" && pwd)
tag=$2
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,etc,tmp,usr/local/pgsql,var/run/postgresql,var/lib/postgresql} "$root/lib" "$root/lib64"
chmod 1777 "$root/tmp"
cp -a "$build"/bin "$build"/lib "$build"/share "$root/usr/local/pgsql/"

# Programs from this machine the entrypoint uses, and every library anything needs.
for tool in sh mkdir chmod chown cat rm id; do
    cp -L "$(command -v "$tool")" "$root/bin/"
done
copy_libs() {
    { ldd "$1" 2>/dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
        case "$lib" in "$root"/* | "$build"/*) continue ;; esac
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}
for f in "$root"/bin/* "$root"/usr/local/pgsql/bin/* "$root"/usr/local/pgsql/lib/*.so* "$root"/usr/local/pgsql/lib/postgresql/*.so; do
    # The build's own libraries resolve through its RUNPATH ($ORIGIN/../lib); only the system's are copied.
    copy_libs "$f"
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
postgres:x:999:
GROUP
chown -R 999:999 "$root/var/run/postgresql" "$root/var/lib/postgresql"
chmod 3777 "$root/var/run/postgresql"

cat > "$root/usr/local/bin-entrypoint.sh" <<'ENTRY'
#!/bin/sh
# The official image's contract, in short: initialise PGDATA on first start, then run the server.
set -e
if [ "$1" = postgres ]; then shift; fi
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ "$(id -u)" = 0 ]; then
    echo "this test image runs as the postgres user; start it with --user postgres" >&2
    exit 1
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        echo "$POSTGRES_PASSWORD" > /tmp/pwfile
        initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --auth="$auth" --pwfile=/tmp/pwfile >/dev/null
        rm -f /tmp/pwfile
    else
        initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --auth="$auth" >/dev/null
    fi
    echo "host all all all $auth" >> "$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /var/run/postgresql "$@"
ENTRY
chmod 755 "$root/usr/local/bin-entrypoint.sh"

tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/pgsql/bin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'USER postgres' \
    --change 'ENTRYPOINT ["/usr/local/bin-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change 'EXPOSE 5432' \
    - "$tag" >/dev/null
echo "$tag"

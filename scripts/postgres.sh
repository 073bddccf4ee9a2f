#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, in its own directory, reached only by a unix socket there.
#   bash scripts/postgres.sh start DIR   # installs Debian's postgresql when missing (as root), starts, prints the URL
#   bash scripts/postgres.sh stop DIR    # stops the server and removes DIR
# The server refuses to run as root: as root, it runs as the postgres user that the package creates.
set -euo pipefail
usage="usage: bash scripts/postgres.sh start|stop DIR"
command=${1:?$usage}
dir=${2:?$usage}

server_bin() {
    find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $command in
start)
    bin=$(server_bin)
    if [ -z "$bin" ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "postgres.sh: PostgreSQL is not installed; as root: apt-get install postgresql" >&2
            exit 1
        fi
        echo "postgres.sh: installing Debian's postgresql package" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin=$(server_bin)
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    as_server "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # Test data is thrown away: no fsync. No TCP: the socket in DIR cannot collide with another server.
    as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses='' -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    as_server "$bin/createdb" -h "$dir" -U postgres splitnas
    echo "postgresql+psycopg://postgres@/splitnas?host=$dir"
    ;;
stop)
    bin=$(server_bin)
    if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
        as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac

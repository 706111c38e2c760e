#!/bin/sh
# Container entrypoint: check that the data directory is usable, then replace this shell
# with eddy (so eddy is PID 1 and receives `docker stop`'s SIGTERM itself).
#
#   eddy-entrypoint                 -> eddy serve
#   eddy-entrypoint --password x    -> eddy serve --password x
#   eddy-entrypoint demo            -> eddy demo
#   eddy-entrypoint sh              -> any other command runs as given
#
# EDDY_BIN overrides the binary (tests run this script against a locally built eddy).
set -eu

bin="${EDDY_BIN:-/usr/local/bin/eddy}"

case "${1:-}" in
    "") set -- serve ;;
    -*) set -- serve "$@" ;;
esac

case "$1" in
    serve | demo)
        data="${EDDY_DATA_DIR:-/var/lib/eddy}"
        if ! mkdir -p "$data" 2>/dev/null || [ ! -w "$data" ]; then
            echo "eddy-entrypoint: data directory $data is not writable by uid $(id -u)." >&2
            echo "eddy-entrypoint: mount a volume there owned by uid $(id -u), e.g. -v eddy-data:$data" >&2
            exit 1
        fi
        exec "$bin" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

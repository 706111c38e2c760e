#!/bin/bash
# Container healthcheck: exit 0 when eddy answers on its Postgres port and, when it has
# one (EDDY_HTTP_LISTEN), its HTTP /health endpoint answers 200. Uses bash's /dev/tcp, so
# the image needs no psql or curl.
#
# The Postgres probe sends an SSLRequest, which every Postgres server answers with one
# byte ('S' or 'N') before any authentication, and closes.
set -u
# A peer that closes early makes a write fail (EPIPE) instead of killing this script
# silently with SIGPIPE: every failure then says why.
trap '' PIPE

timeout_s="${EDDY_HEALTHCHECK_TIMEOUT:-3}"

# "0.0.0.0:5488" / "[::]:5488" / ":5488" -> "127.0.0.1 5488"
target() {
    local addr="$1" host port
    port="${addr##*:}"
    host="${addr%:*}"
    host="${host#[}"
    host="${host%]}"
    case "$host" in
        "" | 0.0.0.0 | "::") host=127.0.0.1 ;;
    esac
    echo "$host" "$port"
}

probe_postgres() {
    local host port reply
    read -r host port <<<"$(target "$1")"
    exec 3<>"/dev/tcp/$host/$port" || return 1
    # Length 8, code 80877103 (SSLRequest).
    printf '\x00\x00\x00\x08\x04\xd2\x16\x2f' >&3 || return 1
    IFS= read -r -n 1 -t "$timeout_s" reply <&3 || return 1
    exec 3<&- 3>&-
    [ "$reply" = N ] || [ "$reply" = S ]
}

probe_http() {
    local host port status
    read -r host port <<<"$(target "$1")"
    exec 4<>"/dev/tcp/$host/$port" || return 1
    printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&4 || return 1
    IFS= read -r -t "$timeout_s" status <&4 || return 1
    exec 4<&- 4>&-
    case "$status" in
        "HTTP/1."[01]" 200 "*) return 0 ;;
        *) echo "eddy-healthcheck: /health answered: $status" >&2; return 1 ;;
    esac
}

if ! probe_postgres "${EDDY_LISTEN:-127.0.0.1:5488}"; then
    echo "eddy-healthcheck: no Postgres answer on ${EDDY_LISTEN:-127.0.0.1:5488}" >&2
    exit 1
fi
if [ -n "${EDDY_HTTP_LISTEN:-}" ] && ! probe_http "$EDDY_HTTP_LISTEN"; then
    echo "eddy-healthcheck: no HTTP /health answer on $EDDY_HTTP_LISTEN" >&2
    exit 1
fi
exit 0

#!/usr/bin/env bash
# Wait until each NAME:PORT answers on 127.0.0.1, or say which do not and fail.
#   scripts/await-servers.sh [--timeout SECONDS] NAME:PORT ...     (default: 60 seconds for all of them)
# .ci/run calls it after starting the servers, so that a server that never came up stops CI here, by name,
# rather than as skipped or failing tests later.
set -uo pipefail

usage() { echo "usage: $0 [--timeout SECONDS] NAME:PORT ...  ($1)" >&2; exit 2; }
timeout=60
case "${1:-}" in
  --timeout) timeout=${2:-}; shift 2 2>/dev/null || usage "--timeout needs a number of seconds" ;;
  --timeout=*) timeout=${1#--timeout=}; shift ;;
esac
[[ "$timeout" =~ ^[0-9]+$ ]] || usage "--timeout '$timeout' is not a number of seconds"
[ $# -gt 0 ] || usage "no server named"
for server in "$@"; do
  [[ "$server" =~ ^[^:]+:[0-9]{1,5}$ ]] || usage "'$server' is not NAME:PORT"
done

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

deadline=$((SECONDS + timeout))
while :; do
  missing=()
  for server in "$@"; do
    answers "${server##*:}" || missing+=("$server")
  done
  [ ${#missing[@]} -eq 0 ] && exit 0
  [ $SECONDS -ge $deadline ] && break
  sleep 1
done
for server in "${missing[@]}"; do
  echo "$0: ${server%:*} is not answering on 127.0.0.1:${server##*:} after ${timeout}s" >&2
done
exit 1

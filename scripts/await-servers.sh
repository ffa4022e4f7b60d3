#!/usr/bin/env bash
# Wait until each NAME:PORT answers on 127.0.0.1, or say which do not and fail.
#   scripts/await-servers.sh [--timeout SECONDS] NAME:PORT ...     (default: 60 seconds for all of them)
# .ci/run calls it after starting the servers, so that a server that never came up stops CI here, by name,
# rather than as skipped or failing tests later.
set -uo pipefail

timeout=60
if [ "${1:-}" = "--timeout" ]; then timeout=$2; shift 2; fi
if [ $# -eq 0 ]; then echo "usage: $0 [--timeout SECONDS] NAME:PORT ..." >&2; exit 2; fi

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

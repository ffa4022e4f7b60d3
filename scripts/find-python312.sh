#!/usr/bin/env sh
# Print a command that runs Python 3.12, or explain what is missing and fail.
# Tried in order: $PYTHON312, python3.12 on PATH, pyenv's newest 3.12.x, uv's, /usr/bin/python3.12, python3.
is312() { "$@" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' >/dev/null 2>&1; }

if [ -n "${PYTHON312:-}" ] && is312 $PYTHON312; then echo "$PYTHON312"; exit 0; fi
if is312 python3.12; then command -v python3.12; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -t. -k3 -n | tail -n 1)
  if [ -n "$v" ]; then
    p="$(pyenv root)/versions/$v/bin/python3.12"
    if is312 "$p"; then echo "$p"; exit 0; fi
  fi
fi
if command -v uv >/dev/null 2>&1; then
  p=$(uv python find 3.12 2>/dev/null) && is312 "$p" && { echo "$p"; exit 0; }
fi
for p in /usr/bin/python3.12 /usr/local/bin/python3.12 python3; do
  if is312 "$p"; then command -v "$p"; exit 0; fi
done
echo "error: Python 3.12 not found (the Lambda and Function Compute runtime is python3.12)." >&2
echo "  Install it (e.g. 'pyenv install 3.12', 'uv python install 3.12', or your OS package python3.12)" >&2
echo "  or point PYTHON312 at it: make test PYTHON312=/path/to/python3.12" >&2
exit 1

#!/usr/bin/env bash
# Print the path of a CPython interpreter of the given minor version (e.g. 3.13).
#
# Tried in order: one uv already knows (on PATH or managed by uv), one installed by
# pyenv (its shims only answer for the active version, so the versions directory is
# searched), then one downloaded by `uv python install`. Fails when none works.
set -euo pipefail
VERSION=${1:?usage: find-python.sh 3.13}
UV=${UV:-.venv/bin/uv}

if found=$("$UV" python find --no-project "$VERSION" 2>/dev/null) && [[ -n "$found" ]]; then
    echo "$found"; exit 0
fi
for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$VERSION".*/bin/python"$VERSION"; do
    if [[ -x "$candidate" ]] && "$candidate" -c 'import sys' 2>/dev/null; then
        echo "$candidate"; exit 0
    fi
done
if "$UV" python install "$VERSION" >&2; then
    "$UV" python find --no-project "$VERSION"; exit 0
fi
echo "no Python $VERSION found or installable (uv, pyenv)" >&2
exit 1

#!/usr/bin/env bash
# Build UZO's wheel and install it, as a user would, into a fresh virtualenv on each
# given Python (e.g. 3.11 3.13), with dependencies resolved from the ranges that
# pyproject.toml declares (not from uv.lock). Then run the installed `uzo`: --version,
# --help, and an example workflow in process.
#
# Usage: bash .ci/test-wheel.sh 3.11 3.13
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UV=.venv/bin/uv
# make exports UV_PYTHON for the project venv; here each install must go to its own
# fresh venv, named explicitly with --python
unset UV_PYTHON UV_PROJECT_ENVIRONMENT
WORK=$(mktemp -d /tmp/uzo-wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

"$UV" build --wheel --out-dir "$WORK/dist" >/dev/null
WHEEL=$(ls "$WORK"/dist/uzo-*.whl)
echo "[wheel] built $(basename "$WHEEL")"
# the package must carry its licence and no test or example code
unzip -l "$WHEEL" | grep -q 'licenses/LICENSE' || { echo "[wheel] LICENSE missing"; exit 1; }
if unzip -l "$WHEEL" | grep -qE ' (tests|examples|benchmarks)/'; then
    echo "[wheel] tests, examples or benchmarks leaked into the wheel"; exit 1
fi

for version in "$@"; do
    python=$(bash .ci/find-python.sh "$version")
    venv="$WORK/venv-$version"
    "$UV" venv -q --python "$python" "$venv"
    # the embedded extra where pgserver has a wheel (it has none for 3.13 and newer)
    spec="$WHEEL"
    if "$python" -c 'import sys; sys.exit(sys.version_info >= (3, 13))'; then
        spec="$WHEEL[embedded]"
    fi
    T0=$SECONDS
    "$UV" pip install -q --python "$venv/bin/python" "$spec"
    echo "[wheel] Python $version: installed in $((SECONDS - T0)) s"
    [[ -x "$venv/bin/uzo" ]] || { echo "[wheel] no uzo command in $venv"; exit 1; }
    "$venv/bin/uzo" --version
    "$venv/bin/uzo" --help >/dev/null
    "$venv/bin/python" - <<'PY'
import importlib.metadata as md
required = [r.split(";")[0] for r in md.requires("uzo") or [] if "extra ==" not in r]
assert not any(r.startswith(("pandas", "pgserver")) for r in required), required
PY
    (cd "$WORK" && HOME="$WORK/home-$version" UZO_HOME="$WORK/uzo-$version" \
        "$venv/bin/uzo" run --local "$OLDPWD/examples/orders_router.json" >"$WORK/run.log" 2>&1) \
        || { cat "$WORK/run.log"; exit 1; }
    echo "[wheel] Python $version: uzo run --local examples/orders_router.json ok"
done

#!/usr/bin/env bash
# Set up rdprobe on a fresh Debian 12 machine and run it.
#   bash scripts/bootstrap.sh demo   # install rdprobe in .venv and run `rdprobe demo`
#   bash scripts/bootstrap.sh test   # also install the real test servers (apt, as root), run all
#                                    # tests, then the unit tests at the lowest dependency versions
#                                    # (RDPROBE_SKIP_LOWEST=1 skips that step)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-demo}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=$candidate; break
  fi
done
if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv python3-pip
  python=${python:-python3}
fi

say() { echo "bootstrap: $*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment .venv with $python"
  "$python" -m venv .venv
fi

# Unit tests again with every runtime dependency at the lower bound pyproject.toml declares, in
# a venv of their own (not the server tests: those need root and the Debian servers).
lowest_versions() {
  say "lowest versions: $(.venv/bin/python scripts/lowest_versions.py | tr '\n' ' ')into .venv-lowest"
  [ -x .venv-lowest/bin/python ] || .venv/bin/python -m venv .venv-lowest
  .venv/bin/python scripts/lowest_versions.py >.venv-lowest/pins.txt
  .venv-lowest/bin/python -m pip install -q --disable-pip-version-check \
    -r .venv-lowest/pins.txt pytest pytest-asyncio scapy hypothesis
  .venv-lowest/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  say "lowest versions: running the unit tests (-m 'not servers')"
  .venv-lowest/bin/python -m pytest -q -m "not servers" -p no:cacheprovider
}

case "$mode" in
  demo)
    # only what the demo needs: rdprobe and its runtime dependencies, no test tools
    say "installing rdprobe and its runtime dependencies (cryptography, typer, rich, jinja2) into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e .
    say "running 'rdprobe demo': emulated Windows listeners on 127.0.0.1, each diagnosed"
    exec .venv/bin/rdprobe demo
    ;;
  test)
    say "installing rdprobe with its test tools (pytest, pytest-asyncio, ruff, scapy, mypy) into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
    say "installing the real servers the tests start (Debian packages, as root)"
    as_root bash scripts/install-debian-deps.sh
    say "lint: ruff check"
    .venv/bin/ruff check rdprobe tests scripts
    say "types: mypy on the whole package"
    .venv/bin/mypy rdprobe
    say "tests: pytest"
    set +e
    .venv/bin/python -m pytest -ra "${@:2}"
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then echo "pytest collected no tests"; exit 1; fi
    if [ "$rc" != 0 ]; then exit "$rc"; fi
    if [ "${RDPROBE_SKIP_LOWEST:-0}" != 1 ]; then
      lowest_versions
    fi
    exit 0
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh demo|test" >&2; exit 2
    ;;
esac

#!/usr/bin/env bash
# Set up rdprobe on a fresh Debian 12 machine and run it.
#   bash scripts/bootstrap.sh demo   # install rdprobe in .venv and run `rdprobe demo`
#   bash scripts/bootstrap.sh test   # also install the real test servers (apt, as root) and run all tests
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

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

case "$mode" in
  demo)
    exec .venv/bin/rdprobe demo
    ;;
  test)
    as_root bash scripts/install-debian-deps.sh
    .venv/bin/ruff check rdprobe tests scripts
    set +e
    .venv/bin/python -m pytest -ra "${@:2}"
    rc=$?
    set -e
    if [ "$rc" = 5 ]; then echo "pytest collected no tests"; exit 1; fi
    exit "$rc"
    ;;
  *)
    echo "usage: bash scripts/bootstrap.sh demo|test" >&2; exit 2
    ;;
esac

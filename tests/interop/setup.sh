#!/usr/bin/env bash
# Creates the virtual environment with the original Python DistKV 0.7.1
# (the tutorial's era) that the interoperability tests drive, at
# target/interop-venv. Exits 0 without doing anything when python3 with
# venv is not available (the tests then skip, saying so); where it is,
# failing to build the environment is an error (exit 1), so that CI does
# not pass with the interoperability tests silently skipped.
#
# Two problems of that old code on Python 3.11 are worked around without
# touching the protocol: trio 0.11 patches traceback.TracebackException
# at import time with wrappers that fail on 3.11 (the two assignments
# are disabled), and the wheel built from the distkv 0.7.1 sdist lacks
# distkv/commands/ (copied from the sdist).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/interop-venv
if [ -x "$VENV/bin/distkv" ] && [ -f "$VENV/.ready" ]; then
    exit 0
fi
if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
    echo "interop: python3 with venv is not available; the interoperability tests will skip"
    exit 0
fi
fail() {
    echo "interop: $1" >&2
    rm -rf "$VENV"
    exit 1
}
rm -rf "$VENV"
python3 -m venv "$VENV" >/dev/null 2>&1 || fail "cannot create a virtual environment (python3-venv missing?)"
PIP=("$VENV/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir)
"${PIP[@]}" anyio==1.0.0 async-exit-stack==1.0.1 async-generator==1.10 asyncserf==0.15.2 \
    attrs==19.1.0 cffi==1.17.1 diffiehellman==0.13.3 distkv==0.7.1 idna==2.8 jsonschema==3.0.1 \
    msgpack==0.6.1 outcome==1.0.0 psutil==7.0.0 pycparser==2.19 pynacl==1.5.0 pyrsistent==0.15.3 \
    pyyaml==6.0.2 range-set==0.3.1 six==1.12.0 sniffio==1.1.0 sortedcontainers==2.1.0 \
    trio==0.11.0 trio-click==7.0.3 || fail "cannot install DistKV 0.7.1 and its pinned dependencies"
SITE=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
sed -i \
    -e 's/^traceback.TracebackException.__init__ = traceback_exception_init/# &/' \
    -e 's/^traceback.TracebackException.format = traceback_exception_format/# &/' \
    "$SITE/trio/_core/_multierror.py"
SDIST=$(mktemp -d)
"$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary distkv \
    distkv==0.7.1 -d "$SDIST" || fail "cannot download the DistKV 0.7.1 sdist"
tar xzf "$SDIST"/distkv-0.7.1.tar.gz -C "$SDIST"
cp -r "$SDIST"/distkv-0.7.1/distkv/commands "$SITE/distkv/"
rm -rf "$SDIST"
"$VENV/bin/distkv" --help >/dev/null
touch "$VENV/.ready"
echo "interop: DistKV 0.7.1 ready in $VENV"

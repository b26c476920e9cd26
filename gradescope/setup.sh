#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (default image:
# Ubuntu 22.04, Python 3.10), from the folder the autograder zip was unpacked into
# (/autograder/source). It makes a virtual environment $AUTOGRADER_ROOT/venv holding the pinned
# grader dependencies: torch first, CPU-only build (small and fast), then
# requirements/grader.txt, the same pins `make setup` installs. No conda.
#
#   AUTOGRADER_ROOT         Gradescope's folder (default /autograder); tests point it elsewhere
#   AUTOGRADER_TORCH_INDEX  the index torch comes from (default PyTorch's CPU-only wheels);
#                           set but empty: pip's own configuration, no --index-url
set -euo pipefail
umask 022  # the sandbox user (others) must read and run what is installed here

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/venv"
PINS="$SOURCE/requirements/grader.txt"
TORCH_INDEX="${AUTOGRADER_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
PIP=("$VENV/bin/python" -m pip install --no-cache-dir --progress-bar off)
START=$SECONDS

say() { echo "setup.sh [$((SECONDS - START)) s]: $*"; }

say "source $SOURCE, virtual environment $VENV, $(python3 --version 2>&1)"
if ! python3 -m venv "$VENV"; then
    if command -v apt-get >/dev/null 2>&1; then
        say "python3 -m venv failed (python3-venv missing?): installing python3-venv with apt-get"
        rm -rf "$VENV"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
        python3 -m venv "$VENV"
    else
        say "python3 -m venv failed and there is no apt-get to install python3-venv with" >&2
        exit 1
    fi
fi

TORCH_PIN="$(grep -m1 -E '^torch[[:space:]]*([=<>!~;]|$)' "$PINS" | sed -e 's/[[:space:]]*#.*//' || true)"
if [ -z "$TORCH_PIN" ]; then
    say "no torch pin in $PINS" >&2
    exit 1
fi
if [ -n "$TORCH_INDEX" ]; then
    say "installing $TORCH_PIN from $TORCH_INDEX"
    # pip's default index stays for torch's own dependencies; the pin's "+cpu" build from
    # TORCH_INDEX wins over the default index's CUDA build of the same version (a local version
    # label sorts higher).
    "${PIP[@]}" --extra-index-url "$TORCH_INDEX" "$TORCH_PIN"
else
    say "installing $TORCH_PIN with pip's own configuration (AUTOGRADER_TORCH_INDEX is empty)"
    "${PIP[@]}" "$TORCH_PIN"
fi
say "installing the pins of $PINS"
"${PIP[@]}" -r "$PINS"

# The worker's seccomp filter goes through libseccomp (a system library: Ubuntu's apt itself needs it).
if ! "$VENV/bin/python" -c "import pyseccomp" 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    say "libseccomp is missing: installing libseccomp2 with apt-get"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y libseccomp2
fi
"$VENV/bin/python" -c "import pyseccomp" || say "WARNING: no libseccomp: workers run without their seccomp layer" >&2

cd "$SOURCE"
"$VENV/bin/python" tools/worker_python_access.py
say "smoke check: import torch, autograder.registry"
"$VENV/bin/python" -c "import torch, autograder.registry as r
print('torch %s (CUDA build: %s), %d graded functions' % (torch.__version__, torch.version.cuda, len(r.FUNCTIONS)))"
if [ "$(id -u)" = 0 ]; then
    say "smoke check: the sandbox user (a leased uid, as in grading) can start $VENV/bin/python and import torch"
    "$VENV/bin/python" -c "
import os, subprocess, sys
from autograder.engine.sandbox import sandbox_user
user = sandbox_user()  # a lease: other graders on this machine never share its uid
def drop():
    os.setgroups([]); os.setgid(user.gid); os.setuid(user.uid)
try:
    subprocess.run([sys.executable, '-I', '-c', 'import torch'], cwd='/', env={'PATH': '/usr/bin:/bin'},
                   preexec_fn=drop, check=True)
    print('uid %d: ok' % user.uid)
finally:
    user.release()"
fi
say "done"

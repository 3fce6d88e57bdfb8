#!/usr/bin/env bash
# The network fault suite (tests/faults/faults.py): the echo and io_board
# examples, in both server modes, on links with delay, loss, reordering,
# duplicates, a blackhole, a rate limit and resets, each case in network
# namespaces of its own. Needs root (CI runs as root); elsewhere it says so
# and skips. Builds the release examples first; scripts/setup installs
# iproute2, iptables and the virtualenv the FAQ programs need.
#   tests/faults/run.sh [--case N]... [--mode threaded|event-loop]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    exec python3 tests/faults/faults.py "$@" # prints the skip
fi
cargo build --release --examples
python=target/venv/bin/python
[ -x "$python" ] || { echo "faults: no $python: run scripts/setup" >&2; exit 1; }
exec "$python" tests/faults/faults.py "$@"

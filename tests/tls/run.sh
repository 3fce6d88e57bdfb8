#!/usr/bin/env bash
# wss:// without a proxy: builds the rustls side crate (examples/tls) and
# checks it with Python clients (tests/tls/check.py: websockets echo,
# io_board over https, slow TLS handshakes dropped at the deadline).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup >/dev/null
cargo build --release --quiet --manifest-path examples/tls/Cargo.toml
bin="${CARGO_TARGET_DIR:-examples/tls/target}/release/stdws-tls"
target/venv/bin/python tests/tls/check.py "$bin"
echo "tls: all passed"

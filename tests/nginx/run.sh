#!/usr/bin/env bash
# The proxy story: nginx in front of the echo example on loopback, once as a
# plain WebSocket reverse proxy (ws://) and once terminating TLS (wss://)
# with a self-signed certificate made here. The nginx configuration is the
# one the README documents. Needs scripts/setup (nginx, openssl, the venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
examples="${CARGO_TARGET_DIR:-target}/release/examples"
python=target/venv/bin/python

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file pattern
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "nginx test: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

echo_port=$(free_port)
"$examples/echo" "127.0.0.1:$echo_port" >"$dir/echo.log" 2>&1 &
pids+=($!)
wait_for "$dir/echo.log" listening

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

ws_port=$(free_port)
wss_port=$(free_port)
mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;

    # --- the README's snippet ---
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen 127.0.0.1:$ws_port;
        listen 127.0.0.1:$wss_port ssl;
        ssl_certificate     $dir/cert.pem;
        ssl_certificate_key $dir/key.pem;

        location / {
            proxy_pass http://127.0.0.1:$echo_port;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$http_host;
            proxy_read_timeout 1h;
        }
    }
    # --- end ---
}
CONF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -c "$dir/nginx.conf" -p "$dir" 2>>"$dir/error.log" &
pids+=($!)
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $wss_port), 1)" 2>/dev/null && break
    sleep 0.05
done

"$python" tests/nginx/echo_check.py "ws://127.0.0.1:$ws_port/"
"$python" tests/nginx/echo_check.py "wss://127.0.0.1:$wss_port/"
echo "nginx test: passed"

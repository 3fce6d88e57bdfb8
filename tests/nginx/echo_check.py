"""Checks an echo through a URL (ws:// or wss://, self-signed certificates accepted)."""
import ssl
import sys

import websocket  # websocket-client, from the test virtualenv

url = sys.argv[1]
ws = websocket.create_connection(url, timeout=5, sslopt={"cert_reqs": ssl.CERT_NONE})
ws.send("hello through nginx ✓")
assert ws.recv() == "hello through nginx ✓"
payload = bytes(range(256)) * 300  # 76,800 bytes: a 64-bit length frame
ws.send_binary(payload)
assert ws.recv() == payload
ws.close()
print(f"ok {url}")

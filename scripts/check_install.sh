#!/usr/bin/env bash
# Install the server and the Python client each into a fresh virtual environment, outside the
# repository, exactly as a user would (`pip install <repo>`, `pip install <repo>/clients/python`),
# and smoke-test what got installed: the server serves on SQLite and its CLI publishes through the
# bundled client; the standalone client imports and verifies. Nothing from the repository is on
# the path of either check.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

echo "check-install: the server package in a fresh venv"
"$python" -m venv server-venv
server-venv/bin/pip install --quiet --disable-pip-version-check "$repo"
free_port() {
    server-venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port="$(free_port)"
http_port="$(free_port)"
WEBHOOK_GRPC_LISTEN="127.0.0.1:$port" WEBHOOK_GRPC_HTTP_LISTEN="127.0.0.1:$http_port" \
    WEBHOOK_GRPC_DATABASE_URL="sqlite:///$work/webhooks.db" \
    WEBHOOK_GRPC_METRICS_LISTEN="" server-venv/bin/webhook-grpc serve >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if server-venv/bin/webhook-grpc publish product.created prod_1 --tenant acme \
        --target "127.0.0.1:$port" --data '{"id": "prod_1", "cost_price": "1.00"}' --json \
        >"$work/published.json" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/serve.log"; echo "serve exited"; exit 1; fi
    sleep 0.2
done
grep -q '"evt_' "$work/published.json" || { cat "$work/serve.log"; echo "publish failed"; exit 1; }
if grep -q cost_price "$work/published.json"; then echo "a confidential field came back"; exit 1; fi
server-venv/bin/python -c 'import json, sys, urllib.request
document = json.load(urllib.request.urlopen(sys.argv[1]))
assert document["openapi"].startswith("3.1"), document' "http://127.0.0.1:$http_port/api/v1/openapi.json" \
    || { cat "$work/serve.log"; echo "the REST listener did not serve its OpenAPI document"; exit 1; }
# The portal's pages ship inside the package (package-data), with no build step.
server-venv/bin/python -c 'import sys, urllib.request
for path in ("/portal/", "/portal/assets/app.js", "/portal/assets/portal.css", "/portal/assets/pages/feed.js"):
    urllib.request.urlopen(sys.argv[1] + path).read()' "http://127.0.0.1:$http_port" \
    || { cat "$work/serve.log"; echo "the installed server did not serve the portal's pages"; exit 1; }
echo "check-install: server installed, served on SQLite (gRPC, REST and the portal) and published through its CLI"

echo "check-install: the Python client alone in a fresh venv"
"$python" -m venv client-venv
client-venv/bin/pip install --quiet --disable-pip-version-check "$repo/clients/python"
client-venv/bin/python - <<'EOF'
import base64, hashlib, hmac, time
import webhook_grpc_client
from webhook_grpc_client import verify
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
body, msg_id, timestamp = b'{"test": 2432232314}', "msg_p5jXN8AQM9LWM0D4loKWxJek", str(int(time.time()))
key = base64.b64decode(secret.removeprefix("whsec_"))
mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp,
           "webhook-signature": "v1," + base64.b64encode(mac).decode()}
verify(headers, body, secret)
assert "site-packages" in webhook_grpc_client.__file__, webhook_grpc_client.__file__
EOF
if client-venv/bin/python -c 'import webhook_grpc' 2>/dev/null; then
    echo "the client package installed the server too"; exit 1
fi
echo "check-install: client installed alone, imports and verifies"

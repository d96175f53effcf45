#!/usr/bin/env bash
# Install each artifact of dist/ (`make dist`: the server's and the Python client's wheels and
# sdists, the TypeScript client's npm tarball) into a fresh environment outside the repository,
# exactly as a user would, and smoke-test what got installed against a real server: the server
# wheel serves on SQLite and its CLI publishes through the bundled client; each client publishes
# and verifies. Nothing from the repository is on the path of any check.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dist="$repo/dist"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

one() {  # the single file of dist/ matching a pattern
    local found=("$dist"/$1)
    [ "${#found[@]}" -eq 1 ] && [ -f "${found[0]}" ] || { echo "dist/$1: expected one file (make dist)"; exit 1; }
    echo "${found[0]}"
}
server_wheel="$(one 'webhook_grpc-*.whl')"
server_sdist="$(one 'webhook_grpc-*.tar.gz')"
client_wheel="$(one 'webhook_grpc_client-*.whl')"
client_sdist="$(one 'webhook_grpc_client-*.tar.gz')"
npm_tarball="$(one 'webhook-grpc-client-*.tgz')"

fresh_venv() {  # fresh_venv DIR ARTIFACT: a new virtual environment with ARTIFACT installed
    "$python" -m venv "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check "$2"
}

echo "check-install: the server wheel in a fresh venv"
fresh_venv server-venv "$server_wheel"
port="$(server-venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
target="127.0.0.1:$port"
http_port="$(server-venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
WEBHOOK_GRPC_LISTEN="$target" WEBHOOK_GRPC_HTTP_LISTEN="127.0.0.1:$http_port" \
    WEBHOOK_GRPC_DATABASE_URL="sqlite:///$work/webhooks.db" \
    WEBHOOK_GRPC_METRICS_LISTEN="" server-venv/bin/webhook-grpc serve >"$work/serve.log" 2>&1 &
server_pid=$!

cli_publish() {  # cli_publish VENV ENTITY: publish through that venv's CLI, check the answer
    "$1/bin/webhook-grpc" publish product.created "$2" --tenant acme --target "$target" \
        --data "{\"id\": \"$2\", \"cost_price\": \"1.00\"}" --json >"$work/published.json"
    grep -q '"evt_' "$work/published.json" || { echo "$1: publish answered no event"; exit 1; }
    if grep -q cost_price "$work/published.json"; then echo "$1: a confidential field came back"; exit 1; fi
}
for _ in $(seq 1 100); do
    if server-venv/bin/webhook-grpc subscriptions list --tenant acme --target "$target" \
        >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/serve.log"; echo "serve exited"; exit 1; fi
    sleep 0.2
done
cli_publish server-venv prod_1
server-venv/bin/python -c 'import json, sys, urllib.request
document = json.load(urllib.request.urlopen(sys.argv[1]))
assert document["openapi"].startswith("3.1"), document' "http://127.0.0.1:$http_port/api/v1/openapi.json" \
    || { cat "$work/serve.log"; echo "the REST listener did not serve its OpenAPI document"; exit 1; }
# The portal's pages ship inside the package (package-data), with no build step.
server-venv/bin/python -c 'import sys, urllib.request
for path in ("/portal/", "/portal/assets/app.js", "/portal/assets/portal.css", "/portal/assets/pages/feed.js"):
    urllib.request.urlopen(sys.argv[1] + path).read()' "http://127.0.0.1:$http_port" \
    || { cat "$work/serve.log"; echo "the installed server did not serve the portal's pages"; exit 1; }
echo "check-install: server wheel installed, served on SQLite (gRPC, REST and the portal) and published through its CLI"

echo "check-install: the server sdist in a fresh venv"
fresh_venv server-sdist-venv "$server_sdist"
cli_publish server-sdist-venv prod_2
echo "check-install: server sdist installed and published through its CLI"

client_smoke() {  # client_smoke VENV: publish with the Python client and verify a signature
    "$1/bin/python" - "$target" <<'EOF'
import asyncio, base64, hashlib, hmac, sys, time
import webhook_grpc_client
from webhook_grpc_client import WebhooksClient, verify

async def publish() -> None:
    async with WebhooksClient(sys.argv[1]) as client:
        event = await client.publish("acme", "product.created", "prod_3", {"id": "prod_3", "cost_price": "1"})
    assert event.id.startswith("evt_") and "cost_price" not in event.data, event

asyncio.run(publish())
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
body, msg_id, timestamp = b'{"test": 2432232314}', "msg_p5jXN8AQM9LWM0D4loKWxJek", str(int(time.time()))
key = base64.b64decode(secret.removeprefix("whsec_"))
mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp,
           "webhook-signature": "v1," + base64.b64encode(mac).decode()}
verify(headers, body, secret)
assert "site-packages" in webhook_grpc_client.__file__, webhook_grpc_client.__file__
EOF
    if "$1/bin/python" -c 'import webhook_grpc' 2>/dev/null; then
        echo "$1: the client package installed the server too"; exit 1
    fi
}
for artifact in "$client_wheel" "$client_sdist"; do
    echo "check-install: the Python client alone in a fresh venv ($(basename "$artifact"))"
    venv="client-venv-$(basename "$artifact")"
    fresh_venv "$venv" "$artifact"
    client_smoke "$venv"
done
echo "check-install: Python client wheel and sdist installed alone, published and verified"

echo "check-install: the TypeScript client's npm tarball in a fresh project"
mkdir node-project
(
    cd node-project
    npm init -y >/dev/null
    npm pkg set type=module
    npm install --silent --no-audit --no-fund "$npm_tarball"
    cat >smoke.js <<'EOF'
import { WebhooksClient, verify } from "@webhook-grpc/client";

const client = new WebhooksClient(process.argv[2]);
const event = await client.publish({
  tenantId: "acme", type: "product.created", entityId: "prod_4",
  data: { id: "prod_4", cost_price: "1.00" },
});
client.close();
if (!event.id.startsWith("evt_") || "cost_price" in event.data) throw new Error(`bad event ${event.id}`);
if (typeof verify !== "function") throw new Error("verify is not exported");
EOF
    node smoke.js "$target"
)
echo "check-install: npm tarball installed, published through the TypeScript client"

#!/usr/bin/env bash
# The demo: installs what it needs, builds the dashboard, starts the server and a simulated
# fleet (16 nodes x 8 GPUs) plus one real agent reading a replayed H100 capture, and prints
# the dashboard URL. Ctrl-C stops everything.
#
# Storage: with GPUPULSE_INFLUX_URL unset the server runs a managed local influxd when one is
# installed (data under GPUPULSE_DATA_DIR, default ./.data), else an in-memory store.
#
# Usage: ./scripts/demo.sh            (env: GPUPULSE_PORT=8080 DEMO_NODES=16 DEMO_GPUS=8)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh

check_node
ensure_pnpm
ensure_deps
build_web

export GPUPULSE_PORT=${GPUPULSE_PORT:-8080}
export GPUPULSE_AGENT_TOKENS=${GPUPULSE_AGENT_TOKENS:-demo-token}
export GPUPULSE_PROJECTS=${GPUPULSE_PROJECTS:-$PWD/examples/projects.yaml}
export GPUPULSE_DATA_DIR=${GPUPULSE_DATA_DIR:-$PWD/.data}
# A GPU held below 5 % for 1 min (not 10) counts as held but idle, so the demo's nudges
# (examples/projects.yaml "nudge:") show within a few minutes. Without GPUPULSE_SMTP_URL they
# are recorded and shown (GPU page, My work), not mailed.
export GPUPULSE_IDLE_WINDOW_MS=${GPUPULSE_IDLE_WINDOW_MS:-60000}
mkdir -p "$GPUPULSE_DATA_DIR"
TOKEN=${GPUPULSE_AGENT_TOKENS%%,*}
URL="http://127.0.0.1:$GPUPULSE_PORT"

# Access (DEMO ONLY): anonymous visitors are viewers (they see user names and jobs, not other
# users' command lines) and a fresh admin token is printed below. A real deployment writes its own
# access file (see examples/access.yaml and server/README.md "Access").
if [ -z "${GPUPULSE_ACCESS_FILE:-}" ]; then
  ADMIN_TOKEN=$(node -e "process.stdout.write(require('node:crypto').randomBytes(16).toString('hex'))")
  ADMIN_SHA=$(node -e "process.stdout.write(require('node:crypto').createHash('sha256').update(process.argv[1]).digest('hex'))" "$ADMIN_TOKEN")
  export GPUPULSE_ACCESS_FILE="$GPUPULSE_DATA_DIR/demo-access.yaml"
  cat > "$GPUPULSE_ACCESS_FILE" <<ACCESS
# Written by scripts/demo.sh for the demo only: anonymous visitors are viewers.
anonymous: viewer
tokens:
  - { name: demo-admin, role: admin, sha256: "$ADMIN_SHA" }
ACCESS
  chmod 600 "$GPUPULSE_ACCESS_FILE"
else
  ADMIN_TOKEN="(see your GPUPULSE_ACCESS_FILE)"
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$GPUPULSE_PORT") 2>/dev/null; then
  die "port $GPUPULSE_PORT is already in use: stop what runs there or set GPUPULSE_PORT=<free port>"
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  log "stopping demo"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Generated history for the past 35 days (once per data dir; needs influxd, see
# server/scripts/backfill-demo.ts), so Trends and last month's report have data at once.
if [ "${DEMO_BACKFILL:-1}" != "0" ]; then
  log "writing generated history for the past ${DEMO_BACKFILL_DAYS:-35} days"
  node server/bin/gpupulse-demo-backfill.mjs --days "${DEMO_BACKFILL_DAYS:-35}" || log "backfill failed (the demo runs without history)"
fi
LAST_MONTH=$(date -d "$(date +%Y-%m-01) -1 day" +%Y-%m)

log "starting server on port $GPUPULSE_PORT"
node server/bin/gpupulse-server.mjs &
pids+=($!)

for _ in $(seq 1 120); do
  if node -e "fetch('$URL/api/v1/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then break; fi
  kill -0 "${pids[0]}" 2>/dev/null || die "the server exited during start-up (see its log above)"
  sleep 0.5
done
node -e "fetch('$URL/api/v1/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" \
  || die "the server did not answer $URL/api/v1/health within 60 s"

log "starting simulated fleet: ${DEMO_NODES:-16} nodes x ${DEMO_GPUS:-8} GPUs"
node agent/bin/gpupulse-sim.mjs --server "$URL" --token "$TOKEN" \
  --nodes "${DEMO_NODES:-16}" --gpus-per-node "${DEMO_GPUS:-8}" --prefix gpu &
pids+=($!)

log "starting one real agent (node 'replay-h100') on a replayed H100 capture"
GPUPULSE_NODE=replay-h100 node agent/bin/gpupulse-agent.mjs --server "$URL" --token "$TOKEN" \
  --nvidia-smi "$PWD/agent/testdata/fake-nvidia-smi/fake-nvidia-smi.mjs" &
pids+=($!)
echo "${pids[2]}" > "${GPUPULSE_DATA_DIR}/demo-agent.pid" 2>/dev/null || true

cat >&2 <<MSG

  gpupulse demo is running.

    dashboard:  $URL/
    fleet API:  $URL/api/v1/fleet
    health:     $URL/api/v1/health
    metrics:    $URL/metrics
    report:     $URL/reports/$LAST_MONTH?lang=ko   (PDF: $URL/api/v1/reports/$LAST_MONTH.pdf?lang=ko)

  Access (DEMO ONLY, $GPUPULSE_ACCESS_FILE):
    anonymous visitors are viewers; admin token: $ADMIN_TOKEN
    e.g. curl -H "Authorization: Bearer $ADMIN_TOKEN" $URL/api/v1/nodes/replay-h100/processes
    sign this browser in as admin: $URL/?access_token=$ADMIN_TOKEN

  Try, on node 'replay-h100' (the real agent, PID ${pids[2]}):
    kill -STOP ${pids[2]}   frozen but connected: stale after 3 s, offline after 30 s
    kill ${pids[2]}         gone: offline at once
  Ctrl-C stops the demo.

MSG
wait -n "${pids[@]}" || true
log "a demo process exited; stopping the rest"

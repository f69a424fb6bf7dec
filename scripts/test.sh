#!/usr/bin/env bash
# The test command: installs what the tests need, then runs lint, typecheck and every test.
#   pnpm, workspace dependencies, Debian's influxdb, chromium, redis-server, openssl, poppler-utils
#   and a Korean font (when missing).
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh

check_node
ensure_pnpm
ensure_apt influxd influxdb
ensure_apt chromium chromium
ensure_apt redis-server redis-server   # scale-out tests (several servers on one Redis)
ensure_apt pdftotext poppler-utils     # reading the PDF reports back in the tests
ensure_apt openssl openssl   # the TLS tests make a self-signed certificate
ensure_apt_pkg fonts-nanum   # Korean glyphs in the browser tests' screenshots
ensure_deps

log "lint (biome)"
pnpm lint
log "typecheck (tsc, vue-tsc)"
pnpm typecheck
build_web
log "tests"
node scripts/run-tests.mjs

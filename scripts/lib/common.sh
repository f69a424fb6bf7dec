# Shared set-up steps for scripts/demo.sh and scripts/test.sh. Sourced, not run.
# Each step is idempotent: it does nothing when what it installs is already there.

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")

log() { printf '\033[1;36m[gpupulse]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[gpupulse] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (run as root or install sudo)"; fi
}

check_node() {
  command -v node >/dev/null 2>&1 || die "Node.js 20 is required (https://nodejs.org or Debian's nodejs 20)"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js >= 20 is required, found $(node --version)"
}

ensure_pnpm() {
  if [ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
    log "installing pnpm@$PNPM_VERSION with npm"
    npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null || die "could not install pnpm@$PNPM_VERSION"
  fi
}

ensure_deps() {
  log "installing workspace dependencies (pnpm install --frozen-lockfile)"
  pnpm install --frozen-lockfile --reporter=silent || die "pnpm install failed"
}

APT_UPDATED=0
# apt_install <debian package>: installs it with apt-get (update once per run).
apt_install() {
  local pkg=$1
  command -v apt-get >/dev/null 2>&1 || die "'$pkg' is missing and this is not a Debian/Ubuntu machine: install it yourself"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "installing Debian package '$pkg'"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
    || die "apt-get install $pkg failed"
}

# ensure_apt <command that must exist> <debian package>
ensure_apt() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/bin/$1" ] && return 0
  apt_install "$2"
}

# ensure_apt_pkg <debian package>: for packages without a command to look for (fonts …)
ensure_apt_pkg() {
  dpkg -s "$1" >/dev/null 2>&1 || apt_install "$1"
}

build_web() {
  log "building the dashboard (web/dist)"
  pnpm --filter @gpupulse/web build >/dev/null || die "web build failed (run: pnpm --filter @gpupulse/web build)"
}

#!/usr/bin/env bash
# Install proxyd as a systemd service, from this repository after `pnpm install`:
#
#   sudo scripts/install-service.sh              install (or update) and start it
#   sudo scripts/install-service.sh --uninstall  remove code and unit; keep /etc/proxyd and /var/log/proxyd
#
# Options: --prefix DIR (default /opt/proxyd), --destdir DIR (stage everything under DIR: for packaging
# and the tests; nothing is started), --no-start (install but do not enable/start).
# Idempotent: running it again updates the code and the unit, and never overwrites the operator's
# /etc/proxyd/proxyd.json or blocklist.
set -euo pipefail

prefix=/opt/proxyd
destdir=
start=yes
action=install
while (($#)); do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --no-start) start=no; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-service.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $prefix = /* ]] || { echo "install-service.sh: --prefix must be an absolute path" >&2; exit 2; }
[[ -n $destdir ]] && start=no

repo=$(cd "$(dirname "$0")/.." && pwd)
root=${destdir%/}
code=$root$prefix
etc=$root/etc/proxyd
unit=$root/etc/systemd/system/proxyd.service
logs=$root/var/log/proxyd
have_systemd() { [[ -z $destdir && -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

if [[ $action = uninstall ]]; then
  if have_systemd; then systemctl disable --now proxyd.service 2>/dev/null || true; fi
  rm -f "$unit"
  rm -rf "$code"
  if have_systemd; then systemctl daemon-reload; fi
  echo "proxyd removed from $code; kept $etc and $logs"
  exit 0
fi

[[ -x $repo/node_modules/.bin/node ]] || { echo "install-service.sh: run 'npx --yes pnpm@10.34.8 install' in $repo first (it brings the Node.js runtime)" >&2; exit 1; }

# The code with its dependencies and its own Node.js runtime (pnpm's links inside node_modules are
# relative, so the tree works wherever it is copied).
mkdir -p "$code"
for item in package.json pnpm-workspace.yaml pnpm-lock.yaml node_modules config; do
  rm -rf "${code:?}/$item"
  cp -a "$repo/$item" "$code/"
done
mkdir -p "$code/packages"
for pkg in sync proxyd; do
  rm -rf "${code:?}/packages/$pkg"
  mkdir -p "$code/packages/$pkg"
  cp -a "$repo/packages/$pkg/package.json" "$repo/packages/$pkg/src" "$code/packages/$pkg/"
  [[ -d $repo/packages/$pkg/bin ]] && cp -a "$repo/packages/$pkg/bin" "$code/packages/$pkg/"
  [[ -d $repo/packages/$pkg/node_modules ]] && cp -a "$repo/packages/$pkg/node_modules" "$code/packages/$pkg/"
done

# A stable path to the runtime binary itself. (node_modules/.bin/node is pnpm's shell shim, which runs
# node as its child: systemd's SIGHUP and SIGTERM would reach the shim, not proxyd.)
runtime=$(cd "$code/node_modules" && ls -d node-linux-*/bin/node 2>/dev/null | head -1)
[[ -n $runtime ]] || { echo "install-service.sh: no Node.js runtime under $code/node_modules (node-linux-*)" >&2; exit 1; }
mkdir -p "$code/bin"
ln -sfn "../node_modules/$runtime" "$code/bin/node"

# The operator's files: written once, never overwritten.
mkdir -p "$etc" "$logs"
if [[ ! -e $etc/proxyd.json ]]; then
  cp "$repo/config/proxyd.example.json" "$etc/proxyd.json"
  echo "wrote $etc/proxyd.json (edit it, then: systemctl reload proxyd)"
fi
if [[ ! -e $etc/blocklist.txt ]]; then
  cp "$repo/config/blocklist.example.txt" "$etc/blocklist.txt"
  echo "wrote $etc/blocklist.txt"
fi

mkdir -p "$(dirname "$unit")"
sed "s#/opt/proxyd#$prefix#g" "$repo/systemd/proxyd.service" > "$unit"
echo "installed $code and $unit"

if have_systemd; then
  systemctl daemon-reload
  if [[ $start = yes ]]; then
    systemctl enable --now proxyd.service
    systemctl --no-pager --lines=5 status proxyd.service || true
  fi
elif [[ -z $destdir ]]; then
  echo "systemd is not running here: start it by hand with $code/node_modules/.bin/node $code/packages/proxyd/bin/proxyd.js --config /etc/proxyd/proxyd.json"
fi

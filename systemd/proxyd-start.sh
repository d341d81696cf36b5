#!/bin/sh
# ExecStart of proxyd.service (installed as /opt/proxyd/bin/proxyd-start): runs proxyd on the Node.js
# runtime installed beside it, and hands proxyd the secrets that systemd passed in as credentials.
#
# The unit runs as a DynamicUser, which cannot read root's files in /etc/proxyd. Its LoadCredential=
# lines make systemd copy them, at each start, into a directory only the service's user can read
# ($CREDENTIALS_DIRECTORY); each one present there becomes a flag (flags win over proxyd.json):
#
#   credential   flag           copied from (see proxyd.service)
#   htpasswd     --auth-file    /etc/proxyd/htpasswd
#   tls-cert     --tls-cert     /etc/proxyd/tls-cert.pem
#   tls-key      --tls-key      /etc/proxyd/tls-key.pem
#
# When /etc/proxyd has no such file, the unit's SetCredential= supplies the default "none", which adds no
# flag: a proxy without passwords or TLS starts as usual. Any other content is passed on, even an empty
# file, so that proxyd refuses a broken secret (exit 2) instead of running without it. Arguments are
# passed on too (the unit gives --config). exec: proxyd takes this process's place and PID, so systemd's
# SIGHUP (ExecReload) and SIGTERM (stop) reach proxyd itself.
set -eu
bin=$(dirname -- "$0")
set -- "$bin/../node_modules/proxyd/bin/proxyd.js" "$@"
used=
if [ -n "${CREDENTIALS_DIRECTORY:-}" ]; then
  for pair in htpasswd:auth-file tls-cert:tls-cert tls-key:tls-key; do
    id=${pair%%:*}
    file=$CREDENTIALS_DIRECTORY/$id
    [ -e "$file" ] || continue
    if [ -r "$file" ] && [ "$(cat -- "$file")" = none ]; then continue; fi
    set -- "$@" "--${pair#*:}" "$file"
    used="$used $id"
  done
fi
echo "proxyd-start: credentials handed to proxyd:${used:- none}" >&2
# Node's flags as bin/proxyd gives them (the reasons are there): one V8 helper thread, and the primary's
# young generation capped at 1 MiB semi-spaces.
exec "$bin/node" --v8-pool-size=1 --max-semi-space-size=1 "$@"

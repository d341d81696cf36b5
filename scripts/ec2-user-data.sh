#!/bin/bash
# EC2 user data (cloud-init) for Ubuntu: install proxyd as a service at first boot, letting in one
# address. Before launching, set ALLOW_CLIENT (your address/32) and where the code comes from: either
# REPOSITORY (a git URL the instance can clone without a password: your fork) or TARBALL_URL (an https://
# URL of `git archive --format=tar.gz --prefix=proxyd/ HEAD`, e.g. a pre-signed S3 URL). proxyd is not
# on npm yet. Output goes to /var/log/proxyd-install.log. See docs/ec2.md.
set -euo pipefail
ALLOW_CLIENT="203.0.113.7/32"   # ← your address
REPOSITORY=""                   # ← a git URL, or:
TARBALL_URL=""                  # ← an https:// URL of a git archive tarball
exec >>/var/log/proxyd-install.log 2>&1
echo "proxyd install started $(date -Is)"
if [[ -n $REPOSITORY && -n $TARBALL_URL || -z $REPOSITORY && -z $TARBALL_URL ]]; then
  echo "set exactly one of REPOSITORY and TARBALL_URL at the top of the user data" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y git nodejs npm ca-certificates curl

install -d -o ubuntu -g ubuntu /home/ubuntu/proxyd
if [[ -n $REPOSITORY ]]; then
  sudo -u ubuntu git clone "$REPOSITORY" /home/ubuntu/proxyd
else
  curl --fail --silent --show-error --location "$TARBALL_URL" | sudo -u ubuntu tar xz -C /home/ubuntu/proxyd --strip-components=1
fi
cd /home/ubuntu/proxyd
sudo -u ubuntu npx --yes pnpm@10.34.8 install

# The operator's config, written before the installer (which never overwrites it). 0755: the mode the
# unit declares (ConfigurationDirectoryMode=), so that the service's user can read proxyd.json.
install -d -m 0755 /etc/proxyd
if [[ ! -e /etc/proxyd/proxyd.json ]]; then
  sed "s#\"allow-client\": \[\]#\"allow-client\": [\"$ALLOW_CLIENT\"]#" config/proxyd.example.json > /etc/proxyd/proxyd.json
  chmod 0644 /etc/proxyd/proxyd.json
fi
scripts/install-service.sh
echo "proxyd install finished $(date -Is)"

#!/bin/bash
# EC2 user data (cloud-init) for Ubuntu: install proxyd as a service at first boot, letting in one
# address. Set ALLOW_CLIENT (your address/32) and REPOSITORY before launching. Output goes to
# /var/log/proxyd-install.log. See docs/ec2.md.
set -euo pipefail
ALLOW_CLIENT="203.0.113.7/32"   # ← your address
REPOSITORY="REPOSITORY-URL"     # ← where this repository lives
exec >>/var/log/proxyd-install.log 2>&1
echo "proxyd install started $(date -Is)"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y git nodejs npm ca-certificates

install -d -o ubuntu -g ubuntu /home/ubuntu/proxyd
sudo -u ubuntu git clone "$REPOSITORY" /home/ubuntu/proxyd
cd /home/ubuntu/proxyd
sudo -u ubuntu npx --yes pnpm@10.34.8 install

# The operator's config, written before the installer (which never overwrites it).
install -d -m 0755 /etc/proxyd
if [[ ! -e /etc/proxyd/proxyd.json ]]; then
  sed "s#\"allow-client\": \[\]#\"allow-client\": [\"$ALLOW_CLIENT\"]#" config/proxyd.example.json > /etc/proxyd/proxyd.json
fi
scripts/install-service.sh
echo "proxyd install finished $(date -Is)"

#!/bin/sh
# Make the demo's client key, host key and known_hosts once, in the volume mounted at /ssh.
set -eu
cd /ssh
if [ ! -f id_ed25519 ]; then
  ssh-keygen -q -t ed25519 -N '' -C fleetdeck-demo -f id_ed25519
  ssh-keygen -q -t ed25519 -N '' -C fleetdeck-demo-host -f host_ed25519
  printf 'demo-target-1,demo-target-2,demo-target-3 %s\n' "$(cut -d' ' -f1,2 host_ed25519.pub)" > known_hosts
  # The worker runs as uid 10001 and must read its key; sshd wants the host key private to root.
  chown 10001:10001 id_ed25519 id_ed25519.pub known_hosts
  chmod 600 id_ed25519 host_ed25519
fi
echo "demo SSH keys ready"

#!/bin/sh
# mkosi PostInstallationScript: runs inside the image (systemd-nspawn) after
# the packages and the extra trees (image/extra, image/out/staging) are in.
set -eu

# The warren group and the warren-manager user exist in the image already,
# so cloud-init can put operators into group warren on first boot.
systemd-sysusers
systemd-tmpfiles --create /usr/lib/tmpfiles.d/warren.conf || true

# Enable what units/system-preset says.
systemctl preset warren-config.service warren-cgroup-rw.service warren-stop-containers.service \
	warren-manager.socket warren-manager-read.socket warren-manager-ingress.socket warren-manager.service \
	warren-agent.socket warren-agent.service warren-mesh.service \
	warren-dns.socket warren-dns-tcp.socket warren-dns.service \
	warren-ingress.socket warren-ingress-https.socket warren-ingress.service
# warren-dns and warren-ingress only once the binary has their daemons.
if /usr/bin/warren dns --help >/dev/null 2>&1; then
	systemctl enable warren-dns.socket warren-dns-tcp.socket warren-dns.service
	echo "postinst: warren dns found: warren-dns enabled"
else
	echo "postinst: this warren has no dns command: warren-dns left disabled"
fi
if /usr/bin/warren ingress --help >/dev/null 2>&1; then
	systemctl enable warren-ingress.socket warren-ingress-https.socket warren-ingress.service
	echo "postinst: warren ingress found: warren-ingress enabled"
else
	echo "postinst: this warren has no ingress command: warren-ingress left disabled"
fi
systemctl enable containerd.service ssh.service systemd-networkd.service

# The host's resolv.conf names the uplink's resolvers, not resolved's stub
# (turned off for warren-dns: image/extra/etc/systemd/resolved.conf.d).
ln -sf ../run/systemd/resolve/resolv.conf /etc/resolv.conf

# No SSH host keys in the image: every device makes its own on first boot
# (ssh.service.d/warren-hostkeys.conf, cloud-init).
rm -f /etc/ssh/ssh_host_*

# No password for anyone (mkosi leaves root locked; make sure).
passwd -l root >/dev/null

# The disk image carries a kernel: mkosi installs packages with INITRD=No,
# so make the initramfs here (initramfs-tools, generic: MODULES=most). A
# UEFI build (Bootable=yes, image/README.md) uses dracut and a unified
# kernel image instead, made by mkosi itself.
if ls /boot/vmlinuz-* >/dev/null 2>&1 && command -v update-initramfs >/dev/null; then
	update-initramfs -c -k all
fi

# A small image: no apt lists or package caches (`apt-get update` brings
# them back); dpkg's database stays, so packages can still be managed.
apt-get clean
rm -rf /var/lib/apt/lists/*

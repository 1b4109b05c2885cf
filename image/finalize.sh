#!/bin/sh
# mkosi FinalizeScript: runs on the build host after postinst, with the
# image tree at $BUILDROOT. For the disk image, copy the kernel and the
# initramfs out next to it (qemu boots them with -kernel/-initrd; a UEFI
# build puts them into a unified kernel image instead: image/README.md).
set -eu
[ "${1:-final}" = final ] || exit 0
out=${WARREN_KERNEL_OUT:-}
[ -n "$out" ] || exit 0
k=$(ls "$BUILDROOT"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
if [ -z "$k" ]; then
	echo "finalize: no kernel in the image" >&2
	exit 1
fi
v=${k##*/vmlinuz-}
cp "$k" "$out.vmlinuz"
cp "$BUILDROOT/boot/initrd.img-$v" "$out.initrd"
echo "$v" >"$out.kernel-version"
echo "finalize: kernel $v → $out.vmlinuz, $out.initrd"

#!/usr/bin/env bash
# Install the host tools the tests need (Debian): nft (test oracle only), iproute2, openssl, ping; and for the
# older-kernel run (tests/oldkernel/): qemu, a static busybox and Debian 12's kernel 6.1.
# Go comes with the machine image; the control plane is built with it from the Go module proxy.
set -euo pipefail
need=()
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
command -v ping >/dev/null || need+=(iputils-ping)
command -v pgrep >/dev/null || need+=(procps)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
old_kernel=$(compgen -G '/boot/vmlinuz-6.1.*' || true)
if ((${#need[@]})) || [[ -z $old_kernel ]]; then
  if [[ $(id -u) -ne 0 ]]; then echo "setup-host: need root to install ${need[*]}$([[ -n $old_kernel ]] || echo ' linux-image-6.1')" >&2; exit 1; fi
  apt-get update -qq
  if [[ -z $old_kernel ]]; then  # the ABI number in the name changes with each Debian point release: take the newest
    kernel_pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' | cut -d' ' -f1 | sort -V | tail -n 1)
    [[ -n $kernel_pkg ]] || { echo "setup-host: no linux-image-6.1.0-*-amd64-unsigned package found" >&2; exit 1; }
    need+=("$kernel_pkg")
  fi
  echo "setup-host: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup-host: Go is required to build kube-apiserver (see README)" >&2; exit 1; }

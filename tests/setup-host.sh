#!/usr/bin/env bash
# Install the host tools the tests need (Debian): nft (test oracle only), iproute2, openssl, ping.
# Go comes with the machine image; the control plane is built with it from the Go module proxy.
set -euo pipefail
need=()
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v openssl >/dev/null || need+=(openssl)
command -v ping >/dev/null || need+=(iputils-ping)
command -v pgrep >/dev/null || need+=(procps)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "setup-host: need root to install ${need[*]}" >&2; exit 1; fi
  echo "setup-host: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup-host: Go is required to build kube-apiserver (see README)" >&2; exit 1; }

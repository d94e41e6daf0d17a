#!/bin/sh
# Runs INSIDE the VM started by tests/oldkernel/run.sh, as root, in the checkout (which the guest sees read-only).
# Usage: guest.sh OUTDIR CI TIMEOUT_SECONDS, with pytest's arguments in OUTDIR/args, one a line.
# Writes OUTDIR/kernel (uname -r) and OUTDIR/rc (pytest's exit status); the host turns a missing rc into a failure.
set -u
out=$1 ci=$2 limit=$3
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done <"$out/args"

kernel=$(uname -r)
echo "$kernel" >"$out/kernel"
echo "oldkernel guest: kernel $kernel, $(nproc) vCPU, CI=$ci"

# Debian builds nf_tables and friends as modules. The kernel would autoload most of them mid-batch, but loading
# them up front keeps a missing module a clear boot-time error instead of a test failure.
if ! modprobe -a nf_tables nft_ct nft_log nf_log_syslog nfnetlink_log veth macvlan bridge; then
  echo "oldkernel guest: modprobe failed" >&2
  echo 98 >"$out/rc"
  exit 0
fi

# Everything pytest, Python and Hypothesis write goes to a tmpfs: the checkout is read-only in here.
scratch=$(mktemp -d /run/oldkernel.XXXXXX)
export TMPDIR="$scratch" HOME="$scratch" CI="$ci" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export HYPOTHESIS_STORAGE_DIRECTORY="$scratch/hypothesis"

# The log lets the host quote pytest's summary line; sh has no PIPESTATUS, so the status goes through a file.
# A test still running after 300 s dumps every thread's stack (a hang shows where it waits).
{
  timeout -k 10 "$limit" .venv/bin/pytest -p no:cacheprovider -o faulthandler_timeout=300 --durations=15 "$@"
  echo $? >"$out/status"
} 2>&1 | tee "$out/pytest.log"
rc=$(cat "$out/status")
[ "$rc" -eq 124 ] && echo "oldkernel guest: pytest timed out after ${limit}s" >&2
mv "$out/status" "$out/rc"

#!/usr/bin/env bash
# The kernel tests that matter for older kernels, run on Debian 12's kernel 6.1 in a VM (issue 7, "Kernel floor").
#
# How: virtme-ng boots the newest /boot/vmlinuz-6.1.* under software emulation (this machine's /dev/kvm is nested
# and unusable) with this machine's filesystem as the guest's root, read-only; tests/oldkernel/guest.sh then runs
# pytest from this checkout's own venv on the subset listed in tests/oldkernel/subset. Emulation is many times
# slower than the host, so the subset is one test per kernel-dependent path, not the whole kernel suite.
#
# Usage: tests/oldkernel/run.sh [PYTEST_ARG...]   (no arguments: the subset; arguments replace it)
# Knobs: OLDKERNEL_IMAGE (kernel image), OLDKERNEL_TIMEOUT (hard limit on the VM in seconds, default 900),
#        OLDKERNEL_CPUS (default 2). CI is passed through, so a skipped kernel test fails here as on the host;
#        tests that cannot apply to 6.1 (marker needs_destroy: NFT_MSG_DESTROY* arrived in 6.3) are deselected and
#        listed, never skipped.
# Exit status: the guest's pytest exit status; 1 (with a message) if the VM did not boot, crashed or timed out.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
repo=$(pwd)

deselect_marker=needs_destroy
timeout_s=${OLDKERNEL_TIMEOUT:-900}
cpus=${OLDKERNEL_CPUS:-2}
# virtme-ng lives in its own venv so that it never mixes with the project's dependencies.
vng_venv=$repo/.cache/oldkernel/venv
vng_version=1.42

fail() { echo "oldkernel: $*" >&2; exit 1; }

image=${OLDKERNEL_IMAGE:-$(ls /boot/vmlinuz-6.1.* 2>/dev/null | sort -V | tail -n 1)}
[[ -n $image && -r $image ]] || fail "no kernel 6.1 image in /boot (tests/setup-host.sh installs one)"
command -v qemu-system-x86_64 >/dev/null || fail "qemu-system-x86_64 missing (tests/setup-host.sh installs it)"
[[ -x $repo/.venv/bin/pytest ]] || fail "the project venv is missing: run make setup"

installed=$("$vng_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("virtme-ng"))' 2>/dev/null || true)
if [[ $installed != "$vng_version" ]]; then
  echo "oldkernel: installing virtme-ng $vng_version into $vng_venv" >&2
  python3 -m venv "$vng_venv"
  "$vng_venv/bin/pip" install -q "virtme-ng==$vng_version"
fi
export PATH="$vng_venv/bin:$PATH"  # vng calls virtme-run from its own venv

if (($#)); then
  selection=("$@")
else
  mapfile -t selection < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$here/subset")
fi

# needs_destroy is registered by the test suite once such tests exist; pytest refuses -m with an unknown marker.
pytest=("$repo/.venv/bin/pytest" -p no:cacheprovider)
deselect=()
markers=$("${pytest[@]}" --markers)
if grep -q "^@pytest.mark.$deselect_marker:" <<<"$markers"; then
  deselect=(-m "not $deselect_marker")
  # Listed here, on the host, because pytest only counts deselected tests.
  echo "oldkernel: deselected on 6.1 (marker $deselect_marker):"
  set +e
  listing=$("${pytest[@]}" --collect-only -q -m "$deselect_marker" "${selection[@]}" 2>&1)
  status=$?
  set -e
  case $status in
    0) grep '::' <<<"$listing" | sed 's/^/  /' ;;
    5) echo "  (none)" ;;
    *) echo "$listing" >&2; fail "collecting the selection failed on the host (status $status)" ;;
  esac
else
  echo "oldkernel: marker $deselect_marker is not registered: nothing deselected"
fi

out=$(mktemp -d /tmp/trinet-oldkernel.XXXXXX)
trap 'rm -rf "$out"' EXIT
# The pytest arguments travel in a file: the command reaches the guest on the kernel command line (2 KiB at most).
printf '%s\n' "${deselect[@]}" "${selection[@]}" >"$out/args"
guest_limit=$((timeout_s > 240 ? timeout_s - 120 : timeout_s / 2))  # leaves time to boot and to report
guest_cmd="cd $(printf %q "$repo") && sh tests/oldkernel/guest.sh $(printf %q "$out") $(printf %q "${CI:-}") $guest_limit"

echo "oldkernel: booting $image (software emulation, $cpus vCPU, limit ${timeout_s}s)"
start=$SECONDS
set +e
# timeout signals its whole process group, so qemu (a child of vng) dies with it. qemu reopens its stdout by path
# with O_TRUNC once per console channel, which garbles a regular file: give it a pipe.
timeout -k 15 "$timeout_s" vng -r "$image" --disable-kvm --force-9p --user root --cpus "$cpus" --memory 2G \
  --rwdir="$out" --append "modprobe.blacklist=kvm_amd,kvm_intel,kvm,ahci" -- "$guest_cmd" </dev/null 2>&1 | cat
vm_rc=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))

[[ $vm_rc -eq 124 || $vm_rc -eq 137 ]] && fail "the VM hit the ${timeout_s}s limit after ${elapsed}s"
[[ -s $out/rc ]] || fail "the VM ended (status $vm_rc, ${elapsed}s) without a pytest result: boot failure or crash"
rc=$(cat "$out/rc")
summary=$(grep -E '^=+ .* in [0-9.]+s.* =+$' "$out/pytest.log" | tail -n 1 | sed -E 's/^=+ (.*) =+$/\1/' || true)
echo "oldkernel: kernel $(cat "$out/kernel"): ${summary:-no pytest summary}; exit status $rc; ${elapsed}s wall" \
  "(host kernel $(uname -r))"
exit "$rc"

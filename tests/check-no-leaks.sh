#!/usr/bin/env bash
# After the suite: no test network namespace and no control-plane process may be left behind.
set -euo pipefail
leaks=0
if ip netns list 2>/dev/null | grep -E '^trinet-(test|e2e)-' ; then
  echo "LEAK: network namespaces left behind (listed above)" >&2; leaks=1
fi
# only this checkout's control planes (their binaries live under its .cache): other checkouts may be testing too
if pgrep -af 'trinet-controlplane-' | grep -F "$(pwd)/.cache/controlplane/" ; then
  echo "LEAK: control-plane processes left behind (listed above)" >&2; leaks=1
fi
if [ -d /sys/fs/cgroup/unified/kubepods.slice ] && find /sys/fs/cgroup/unified/kubepods.slice -name 'trinet-e2e-*.scope' | grep . ; then
  echo "LEAK: e2e pod cgroups left behind (listed above; python -m e2e sweep removes them)" >&2; leaks=1
fi
exit $leaks

#!/usr/bin/env bash
# After the suite: no test network namespace and no control-plane process may be left behind.
set -euo pipefail
leaks=0
if ip netns list 2>/dev/null | grep -E '^trinet-test-' ; then
  echo "LEAK: network namespaces left behind (listed above)" >&2; leaks=1
fi
if pgrep -af 'trinet-controlplane-' ; then
  echo "LEAK: control-plane processes left behind (listed above)" >&2; leaks=1
fi
exit $leaks

"""The trinet node daemon: watches -> affected local pods -> one nftables transaction per pod.

Modules, one job each: ``settings`` (every setting, flags and environment), ``netns`` (pod UID -> network
namespace through procfs), ``mapper`` (change -> affected local pods), ``queue`` (coalescing dirty-pod queue,
backoff), ``worker`` (one pod: resolve, compile, compare, transaction), ``resync`` (periodic read-back and drift
repair), ``health`` (/healthz, /readyz), ``observer`` (the hooks for metrics and Events), ``logs`` (structured
logs), ``daemon`` (the nursery that runs them all), ``cleanup`` (uninstall).
"""

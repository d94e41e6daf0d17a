"""Seeing what trinet does: Prometheus metrics and Events (``metrics``), ``trinet render`` and ``trinet explain``.

``render`` and ``explain`` are pure functions over a ``trinet.policy.Snapshot``; their command-line wrappers read
the cluster once through a kubeconfig and need no root.
"""

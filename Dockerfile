# trinet image: `docker build -t REGISTRY/trinet:0.1.0 .` (not built in CI: this machine kind has no Docker
# engine; tests/deploy/test_dockerfile.py checks this file against pyproject.toml instead).
ARG PYTHON_VERSION=3.11

# Stage 1: trinet's wheel, and the wheels of its dependencies including the `cri` extra (grpcio, for the CRI netns
# source); all of them publish binary wheels for linux x86_64 and aarch64, so not even this stage needs a compiler.
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trinet trinet
COPY netlink_nft netlink_nft
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[cri]'

# Stage 2: the runtime. The wheels are installed offline, then pip, setuptools and wheel are removed: no build
# tools, no source tree, no package installer left in the image.
FROM python:${PYTHON_VERSION}-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'trinet[cri]==0.1.0' \
    && rm -rf /wheels \
    && pip uninstall --yes pip setuptools wheel
# Non-root by default: `render`, `explain` and `check-config` need no privileges. `trinet run` and `cleanup`
# cannot run as non-root: Kubernetes puts added capabilities (NET_ADMIN, SYS_ADMIN, SYS_PTRACE) in the bounding
# set, and only uid 0 gets them as effective capabilities at exec (there are no ambient capabilities for
# non-root containers, and file capabilities on the interpreter would hand them to every Python program). So
# the DaemonSet sets runAsUser: 0 and drops every other capability (deploy/base/daemonset.yaml).
USER 65532:65532
ENTRYPOINT ["trinet"]
CMD ["--help"]

# trinet daemon image. Not built in CI: this machine kind has no Docker engine (see README, "Shipping").
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY trinet trinet
COPY netlink_nft netlink_nft
RUN pip install --no-cache-dir . && rm -rf /src
ENTRYPOINT ["trinet"]

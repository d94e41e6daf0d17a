"""An API-server connection on httpx.AsyncClient (HTTP/1.1, one connection per watch) for trio code.

`ApiClient.request` is a plain request with a short timeout; `ApiClient.stream` opens a streaming GET (watches) with
a read timeout that acts as the inactivity deadline. Non-2xx answers raise `ApiError` carrying the decoded
`metav1.Status` (code, reason, message, retryAfterSeconds). Bearer tokens come from a `TokenSource` that re-reads a
token file every `reload_interval` seconds and after a 401; a 401 is retried once with the reloaded token.
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import msgspec

from trinet.kube.config import KubeConfig, KubeConfigError
from trinet.logs import event

__all__ = ["ApiClient", "ApiError", "Status", "TokenSource"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=10.0)


class StatusDetails(msgspec.Struct, rename="camel"):
    retry_after_seconds: int | None = None


class Status(msgspec.Struct, rename="camel"):
    """metav1.Status, as returned with errors (HTTP bodies and watch ERROR events)."""

    code: int = 0
    reason: str = ""
    message: str = ""
    details: StatusDetails | None = None


_status_decoder = msgspec.json.Decoder(Status)


class ApiError(Exception):
    """The API server answered with an error status (HTTP, or an ERROR event inside a watch stream)."""

    def __init__(self, code: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {code} {reason}: {message}")
        self.code, self.reason, self.message, self.retry_after = code, reason, message, retry_after

    @property
    def expired(self) -> bool:
        """A resourceVersion or continue token that is too old (410 Expired/Gone): relist."""
        return self.code == 410 or self.reason in ("Expired", "Gone")

    @classmethod
    def from_status(cls, status: Status, retry_after_header: str | None = None) -> ApiError:
        retry: float | None = None
        if status.details is not None and status.details.retry_after_seconds:
            retry = float(status.details.retry_after_seconds)
        if retry_after_header:
            with suppress(ValueError):
                retry = float(retry_after_header)
        return cls(status.code, status.reason, status.message, retry)

    @classmethod
    def from_response(cls, response: httpx.Response, body: bytes) -> ApiError:
        try:
            status = _status_decoder.decode(body)
        except msgspec.DecodeError:
            status = Status(message=body[:300].decode(errors="replace").strip())
        if not status.code:
            status.code = response.status_code
        if not status.reason:
            status.reason = response.reason_phrase
        return cls.from_status(status, response.headers.get("Retry-After"))


class TokenSource:
    """A bearer token: fixed, or read from a file (re-read every `reload_interval` s and when invalidated)."""

    def __init__(self, token: str | None, token_file: str | None, reload_interval: float = 60.0) -> None:
        self._fixed, self._file, self.reload_interval = token, token_file, reload_interval
        self._cached: str | None = None
        self._read_at = -1e18

    @property
    def reloadable(self) -> bool:
        return self._fixed is None and self._file is not None

    def get(self) -> str | None:
        if self._fixed is not None or self._file is None:
            return self._fixed
        now = time.monotonic()
        if self._cached is None or now - self._read_at >= self.reload_interval:
            try:
                self._cached = Path(self._file).read_text().strip()
            except OSError as exc:
                if self._cached is None:
                    raise ApiError(401, "TokenUnreadable", f"cannot read token file {self._file}: {exc}") from exc
                event(log, logging.WARNING, "token-reread-failed", file=self._file, error=str(exc),
                      action="keeping the previous token")  # fmt: skip
            self._read_at = now
        return self._cached

    def invalidate(self) -> None:
        """Force a re-read on the next `get()` (after a 401)."""
        self._read_at = -1e18


def ssl_context(config: KubeConfig) -> ssl.SSLContext:
    """The TLS context of `config`: its CA (file or data) or the system CAs, client certificate, or no checks."""
    ctx = ssl.create_default_context()
    try:
        if config.ca_file or config.ca_data:
            ctx = ssl.create_default_context(
                cafile=config.ca_file, cadata=config.ca_data.decode() if config.ca_data else None
            )
        if config.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if config.client_cert_file or config.client_cert_data:
            _load_client_cert(ctx, config)
    except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
        raise KubeConfigError(f"{config.source}: unusable TLS material (CA or client certificate/key): {exc}") from exc
    return ctx


def _load_client_cert(ctx: ssl.SSLContext, config: KubeConfig) -> None:
    """ssl only loads certificates from files: inline data goes through a private temporary directory."""
    with tempfile.TemporaryDirectory(prefix="trinet-tls-") as tmp:
        cert, key = config.client_cert_file, config.client_key_file
        if config.client_cert_data is not None:
            cert = os.path.join(tmp, "cert.pem")
            Path(cert).write_bytes(config.client_cert_data)
        if config.client_key_data is not None:
            key = os.path.join(tmp, "key.pem")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(config.client_key_data)
        assert cert is not None
        ctx.load_cert_chain(cert, key)


class ApiClient:
    """`async with ApiClient(config) as api:`; all requests go through one httpx.AsyncClient owned here."""

    def __init__(
        self,
        config: KubeConfig,
        *,
        token_reload_interval: float = 60.0,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.config = config
        self.tokens = TokenSource(config.token, config.token_file, token_reload_interval)
        self.timeout = timeout
        self._client = httpx.AsyncClient(
            base_url=config.server,
            verify=ssl_context(config),
            timeout=timeout,
            http1=True,
            http2=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"Accept": "application/json", "User-Agent": "trinet"},
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        token = self.tokens.get()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> bytes:
        """The body of a 2xx answer; `ApiError` otherwise (401: token reloaded and the request retried once)."""
        for attempt in (1, 2):
            response = await self._client.request(
                method,
                path,
                params=params,
                content=content,
                headers=self._headers(headers),
                timeout=timeout or self.timeout,
            )
            if response.status_code == 401 and attempt == 1 and self.tokens.reloadable:
                self.tokens.invalidate()
                continue
            if response.is_success:
                return response.content
            raise ApiError.from_response(response, response.content)
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def stream(
        self, path: str, *, params: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[httpx.Response]:
        """A streaming GET whose every network read must finish within `read_timeout` (httpx.ReadTimeout)."""
        timeout = httpx.Timeout(connect=10.0, read=read_timeout, write=10.0, pool=10.0)
        for attempt in (1, 2):
            request = self._client.build_request(
                "GET", path, params=params, headers=self._headers(None), timeout=timeout
            )
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code == 401 and attempt == 1 and self.tokens.reloadable:
                    self.tokens.invalidate()
                    continue
                if not response.is_success:
                    body = await response.aread()
                    raise ApiError.from_response(response, body)
                yield response
                return
            finally:
                await response.aclose()

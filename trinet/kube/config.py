"""Where the API server is and how to authenticate: in-cluster service account or a kubeconfig file.

`load_config(None)` is the in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and the service-account files);
`load_config(path, context)` reads a kubeconfig (several files joined with ``:`` merge as kubectl merges them: the
first file that defines a name wins). Every error is a `KubeConfigError` whose message names the file and the
field. Nothing is contacted here; the token file is read by `TokenSource` (trinet.kube.client) when needed.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SERVICE_ACCOUNT_DIR", "KubeConfig", "KubeConfigError", "load_config"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(ValueError):
    """The configuration is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class KubeConfig:
    """Everything needed to reach and authenticate to one API server. Secrets are kept as given."""

    server: str
    ca_file: str | None = None
    ca_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    client_cert_file: str | None = None
    client_key_file: str | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    namespace: str = "default"
    source: str = ""
    """Where this came from (file and context, or "in-cluster"), for messages."""

    def __repr__(self) -> str:  # never print secrets
        return f"KubeConfig(server={self.server!r}, source={self.source!r})"


def load_config(kubeconfig: str | None, context: str | None = None) -> KubeConfig:
    """Kubeconfig `kubeconfig` (current or named `context`), or the in-cluster configuration when None."""
    if kubeconfig is None:
        if context is not None:
            raise KubeConfigError("in-cluster configuration: a context was given but there is no kubeconfig")
        return in_cluster_config()
    files = [Path(p).expanduser() for p in kubeconfig.split(os.pathsep) if p]
    if not files:
        raise KubeConfigError(f"kubeconfig {kubeconfig!r}: no file named")
    return _Merged(files).resolve(context)


def in_cluster_config(sa_dir: Path = SERVICE_ACCOUNT_DIR, environ: dict[str, str] | None = None) -> KubeConfig:
    """The pod's own service account: the token file is re-read periodically (it is rotated by the kubelet)."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeConfigError(
            "in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set "
            "(not running in a pod? pass a kubeconfig)"
        )
    token_file, ca_file = sa_dir / "token", sa_dir / "ca.crt"
    for path, what in ((token_file, "token"), (ca_file, "CA certificate")):
        if not path.is_file():
            raise KubeConfigError(f"in-cluster configuration: service-account {what} {path} does not exist")
    namespace = env.get("POD_NAMESPACE", "")
    if not namespace and (sa_dir / "namespace").is_file():
        namespace = (sa_dir / "namespace").read_text().strip()
    host_part = f"[{host}]" if ":" in host else host
    return KubeConfig(
        server=f"https://{host_part}:{port}",
        ca_file=str(ca_file),
        token_file=str(token_file),
        namespace=namespace or "default",
        source="in-cluster",
    )


class _Merged:
    """Named clusters, users and contexts of one or more kubeconfig files, first definition winning."""

    def __init__(self, files: list[Path]) -> None:
        self.sections: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {"clusters": {}, "users": {}, "contexts": {}}
        self.current: tuple[Path, str] | None = None
        for file in files:
            self._load(file)

    def _load(self, file: Path) -> None:
        try:
            doc = yaml.safe_load(file.read_text())
        except OSError as exc:
            raise KubeConfigError(f"kubeconfig {file}: cannot read: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise KubeConfigError(f"kubeconfig {file}: not valid YAML: {exc}") from exc
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise KubeConfigError(f"kubeconfig {file}: the document must be a mapping, not {type(doc).__name__}")
        singular = {"clusters": "cluster", "users": "user", "contexts": "context"}
        for section, inner in singular.items():
            entries = doc.get(section) or []
            if not isinstance(entries, list):
                raise KubeConfigError(f"kubeconfig {file}: field {section} must be a list")
            for i, entry in enumerate(entries):
                where = f"{section}[{i}]"
                if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
                    raise KubeConfigError(f"kubeconfig {file}: field {where}.name must be a non-empty string")
                body = entry.get(inner)
                if not isinstance(body, dict):
                    raise KubeConfigError(f"kubeconfig {file}: field {where}.{inner} must be a mapping")
                self.sections[section].setdefault(entry["name"], (file, body))
        current = doc.get("current-context")
        if current and self.current is None:
            if not isinstance(current, str):
                raise KubeConfigError(f"kubeconfig {file}: field current-context must be a string")
            self.current = (file, current)

    def resolve(self, context: str | None) -> KubeConfig:
        if context is None:
            if self.current is None:
                raise KubeConfigError(
                    f"kubeconfig {self._names()}: field current-context is not set and no context given"
                )
            origin, context = self.current
        else:
            origin = None
        if context not in self.sections["contexts"]:
            where = origin or self._names()
            raise KubeConfigError(f"kubeconfig {where}: context {context!r} is not defined in contexts")
        ctx_file, ctx = self.sections["contexts"][context]
        cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
        if not isinstance(cluster_name, str) or cluster_name not in self.sections["clusters"]:
            raise KubeConfigError(
                f"kubeconfig {ctx_file}: field contexts[{context}].context.cluster names no defined cluster "
                f"({cluster_name!r})"
            )
        user: dict[str, Any] = {}
        user_file = ctx_file
        if user_name is not None:
            if not isinstance(user_name, str) or user_name not in self.sections["users"]:
                raise KubeConfigError(
                    f"kubeconfig {ctx_file}: field contexts[{context}].context.user names no defined user "
                    f"({user_name!r})"
                )
            user_file, user = self.sections["users"][user_name]
        cluster_file, cluster = self.sections["clusters"][cluster_name]
        namespace = ctx.get("namespace") or "default"
        return KubeConfig(
            **_cluster_fields(cluster_file, cluster_name, cluster),
            **_user_fields(user_file, str(user_name), user),
            namespace=str(namespace),
            source=f"{ctx_file} (context {context})",
        )

    def _names(self) -> str:
        files = {str(f) for sec in self.sections.values() for f, _ in sec.values()}
        return ":".join(sorted(files)) or "(empty)"


def _cluster_fields(file: Path, name: str, cluster: dict[str, Any]) -> dict[str, Any]:
    field = _Fields(file, f"clusters[{name}].cluster", cluster)
    server = field.string("server")
    if not server:
        raise KubeConfigError(f"kubeconfig {file}: field clusters[{name}].cluster.server is required")
    if not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"kubeconfig {file}: field clusters[{name}].cluster.server must be an http(s) URL")
    insecure = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(insecure, bool):
        raise KubeConfigError(
            f"kubeconfig {file}: field clusters[{name}].cluster.insecure-skip-tls-verify must be a boolean"
        )
    return {
        "server": server.rstrip("/"),
        "ca_file": field.path("certificate-authority"),
        "ca_data": field.data("certificate-authority-data"),
        "insecure_skip_tls_verify": insecure,
    }


def _user_fields(file: Path, name: str, user: dict[str, Any]) -> dict[str, Any]:
    prefix = f"users[{name}].user"
    field = _Fields(file, prefix, user)
    if "exec" in user:
        raise KubeConfigError(
            f"kubeconfig {file}: field {prefix}.exec: exec credential plugins are not supported by trinet; "
            "use a token, a token file or a client certificate"
        )
    if "auth-provider" in user:
        raise KubeConfigError(f"kubeconfig {file}: field {prefix}.auth-provider: auth providers are not supported")
    if "username" in user or "password" in user:
        raise KubeConfigError(f"kubeconfig {file}: field {prefix}.username/password: basic auth is not supported")
    out: dict[str, Any] = {
        "token": field.string("token"),
        "token_file": field.path("tokenFile"),
        "client_cert_file": field.path("client-certificate"),
        "client_key_file": field.path("client-key"),
        "client_cert_data": field.data("client-certificate-data"),
        "client_key_data": field.data("client-key-data"),
    }
    has_cert = out["client_cert_file"] is not None or out["client_cert_data"] is not None
    has_key = out["client_key_file"] is not None or out["client_key_data"] is not None
    if has_cert != has_key:
        missing = "client-key(-data)" if has_cert else "client-certificate(-data)"
        raise KubeConfigError(f"kubeconfig {file}: field {prefix}.{missing} is required with the other half")
    return out


class _Fields:
    """Typed access to one kubeconfig mapping, with messages naming the file and the field path."""

    def __init__(self, file: Path, prefix: str, body: dict[str, Any]) -> None:
        self.file, self.prefix, self.body = file, prefix, body

    def _fail(self, key: str, what: str) -> KubeConfigError:
        return KubeConfigError(f"kubeconfig {self.file}: field {self.prefix}.{key} {what}")

    def string(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self._fail(key, "must be a string")
        return value

    def path(self, key: str) -> str | None:
        value = self.string(key)
        if value is None:
            return None
        resolved = (self.file.parent / Path(value).expanduser()).resolve()
        if not resolved.is_file():
            raise self._fail(key, f"names {resolved}, which does not exist")
        return str(resolved)

    def data(self, key: str) -> bytes | None:
        value = self.string(key)
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._fail(key, f"is not valid base64 ({exc})") from exc

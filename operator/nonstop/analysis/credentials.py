"""Whether a Secret may be sent, as an analysis metric's credentials, to an address.

A metric reads a Secret by name (`valueFrom.secretKeyRef`) and sends its value as a request
header. Without a rule, anyone allowed to write a Rollout or an AnalysisTemplate could send
any Secret of the namespace to a server of their choosing. So a Secret is sent only when
its owner said so, on the Secret itself:

- the label `nonstop.dev/credentials: "true"` marks it as analysis credentials;
- the annotation `nonstop.dev/allowed-urls` lists the URL prefixes it may be sent to,
  separated by commas or white space, e.g. `https://prometheus.example:9090/,
  https://slo.example/api/v1/`.

A URL matches a prefix when its scheme and host are the same (the host without regard to
case), its port is the same (a missing port is the scheme's: 80 or 443), and its path is
the prefix's path or lies below it, at a `/` boundary (`/api` allows `/api` and `/api/x`,
not `/apix`; `/api/` allows `/api/x`, not `/api`; no path is `/`). Query and fragment are not compared. What could make two URL parsers disagree
on the host (and so send the Secret elsewhere than this check saw) is refused outright: a
user name or password (`https://good.example@evil.example/`), a backslash, white space or
control characters, anything but ASCII in the host, `.` or `..` path segments (also written
`%2e`), a scheme other than http or https. Nothing is ever resolved or fetched here.

Pure: the provider layer (nonstop/providers.py) reads the Secret and asks `refusal` before
every request that would carry it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

CREDENTIALS_LABEL = "nonstop.dev/credentials"
ALLOWED_URLS_ANNOTATION = "nonstop.dev/allowed-urls"
DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE = re.compile(r"[\\\s\x00-\x1f\x7f]")
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class Address:
    """Where a request goes, as compared: scheme, host (lower case), port, path."""

    scheme: str
    host: str
    port: int
    path: str


def address(url: str) -> Address | str:
    """The address of a URL, or why it is not one this check can vouch for."""
    if _UNSAFE.search(url):
        return "it holds a backslash, white space or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"it does not parse ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        return "its scheme is not http or https"
    if "@" in parts.netloc:
        return "it names a user (user@host)"
    host = parts.hostname or ""
    if not host:
        return "it names no host"
    if not host.isascii():
        return "its host is not ASCII (write it in punycode)"
    segments = unquote(parts.path).split("/")
    if any(s in (".", "..") for s in segments):
        return "its path has '.' or '..' segments"
    return Address(scheme, host, port if port is not None else DEFAULT_PORTS[scheme], parts.path)


def allows(prefix: str, url: str) -> bool:
    """Whether the URL lies under the prefix (both must be addresses; see the module)."""
    allowed, wanted = address(prefix), address(url)
    if isinstance(allowed, str) or isinstance(wanted, str):
        return False
    if (allowed.scheme, allowed.host, allowed.port) != (wanted.scheme, wanted.host, wanted.port):
        return False
    base, path = allowed.path or "/", wanted.path or "/"
    if base.endswith("/"):
        return path.startswith(base)
    return path == base or path.startswith(base + "/")


def allowed_urls(metadata: Mapping[str, Any]) -> list[str]:
    """The prefixes a Secret's annotation lists, as written."""
    annotations = metadata.get("annotations") or {}
    text = str(annotations.get(ALLOWED_URLS_ANNOTATION) or "")
    return [p for p in _SEPARATORS.split(text) if p]


def shown(url: str) -> str:
    """A URL as an error message shows it: without its query (which may be long)."""
    return url.split("?", maxsplit=1)[0].split("#", maxsplit=1)[0]


def refusal(name: str, secret: Mapping[str, Any], url: str) -> str | None:
    """Why the Secret `name` (the object as read) may not be sent to `url`; None: it may."""
    metadata = secret.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(CREDENTIALS_LABEL) != "true":
        return (
            f"Secret {name} is not labelled {CREDENTIALS_LABEL}=true: an analysis sends only"
            f" Secrets labelled so, to the URLs their annotation {ALLOWED_URLS_ANNOTATION}"
            f" lists (here {shown(url)})"
        )
    prefixes = allowed_urls(metadata)
    if not prefixes:
        return (
            f"Secret {name} has no annotation {ALLOWED_URLS_ANNOTATION}: list there the URL"
            f" prefixes it may be sent to (here {shown(url)})"
        )
    where = address(url)
    if isinstance(where, str):
        return f"Secret {name} is not sent to {shown(url)}: {where}"
    if any(allows(prefix, url) for prefix in prefixes):
        return None
    return (
        f"Secret {name} may not be sent to {shown(url)}: its annotation"
        f" {ALLOWED_URLS_ANNOTATION} allows only {', '.join(prefixes)}"
    )

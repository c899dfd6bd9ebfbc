"""The outbound-URL guard: one SSRF check for every URL the server itself will call (a chatbot's
``llm_endpoint_url``, webhook targets).

A URL passes when its scheme is http(s), it carries no credentials, and its host is — and
resolves only to — public addresses. Refused: loopback, private (RFC 1918, ``fc00::/7``),
link-local (``169.254/16`` including the cloud metadata address, ``fe80::/10``), multicast,
reserved, unspecified, shared/CGNAT ``100.64/10``, and IPv6 forms that wrap such an IPv4 address
(IPv4-mapped ``::ffff:127.0.0.1``, 6to4 ``2002::/16``, Teredo). Numeric hosts are read the way
``inet_aton`` reads them, so ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` are
all 127.0.0.1; any such non-canonical spelling is refused outright, because HTTP clients and
resolvers disagree about what it means. Names are resolved with ``getaddrinfo`` and *every*
address returned must pass.

``settings.ALLOW_PRIVATE_OUTBOUND = True`` lifts the address rules (on-premises targets); the
scheme and credential rules always apply.

Check when the URL is saved (:func:`check_outbound_url`, 422) and again right before each call
(:func:`recheck_outbound_url`, 502), because DNS answers can change in between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from django.conf import settings

from chatplatform.api.exceptions import AppError

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # CGNAT, RFC 6598
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
_FORBIDDEN_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")
# What inet_aton accepts: one to four dot-separated decimal, octal (0…) or hex (0x…) parts.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundURLRefused(AppError):
    """The URL may not be called by this server. ``details`` names the field."""

    status_code = 422
    code = "OUTBOUND_URL_REFUSED"


def _refuse(field: str, reason: str, status_code: int) -> OutboundURLRefused:
    return OutboundURLRefused(f"{field}: {reason}", status_code=status_code, details={field: [reason]})


def address_block_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be called, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded, kind in ((ip.ipv4_mapped, "IPv4-mapped"), (ip.sixtofour, "6to4")):
            if embedded is not None:
                inner = address_block_reason(embedded)
                if inner:
                    return f"{kind} form of {inner}"
        if ip.teredo is not None:
            for embedded in ip.teredo:
                inner = address_block_reason(embedded)
                if inner:
                    return f"Teredo form of {inner}"
        if ip in NAT64_PREFIX:
            inner = address_block_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
            if inner:
                return f"NAT64 form of {inner}"
        if ip.scope_id:
            return "scoped (zone) address"
    checks = (
        (ip.is_unspecified, "unspecified address"),
        (ip.is_loopback, "loopback address"),
        (ip.is_link_local, "link-local address (includes cloud metadata 169.254.169.254)"),
        (ip.is_multicast, "multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE, "shared (CGNAT) address"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local address"),
        (ip.is_private, "private address"),
        (ip.is_reserved, "reserved address"),
        (not ip.is_global, "non-public address"),
    )
    return next((reason for blocked, reason in checks if blocked), None)


def _literal_address(host: str) -> IPAddress | None:
    """The address a numeric host denotes (any inet_aton spelling, or an IPv6 literal)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        addresses.append(ipaddress.ip_address(text))
    return addresses


def check_outbound_url(url: str, *, field: str = "url", status_code: int = 422,
                       allow_private: bool | None = None) -> str:
    """Return ``url`` (stripped) if this server may call it; raise :class:`OutboundURLRefused`
    (``status_code``, ``details`` naming ``field``) otherwise. Resolves the host (blocking)."""
    if allow_private is None:
        allow_private = bool(getattr(settings, "ALLOW_PRIVATE_OUTBOUND", False))
    url = (url or "").strip()
    if not url:
        raise _refuse(field, "A URL is required.", status_code)
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(field, f"URL is longer than {MAX_URL_LENGTH} characters.", status_code)
    if _FORBIDDEN_CHARS.search(url):
        raise _refuse(field, "URL contains whitespace, control characters or backslashes.", status_code)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _refuse(field, "Only http and https URLs are allowed.", status_code)
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise _refuse(field, "Credentials in the URL are not allowed.", status_code)
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise _refuse(field, "Invalid port.", status_code) from None
    raw_host = parts.hostname or ""
    if not raw_host:
        raise _refuse(field, "URL has no host.", status_code)
    if "%" in raw_host:
        raise _refuse(field, "Scoped (zone) IPv6 addresses are not allowed.", status_code)
    try:
        # IDNA (with NFKC) first, so look-alike digits such as "①②⑦" are read as what they are.
        host = raw_host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        raise _refuse(field, "Invalid host name.", status_code) from None
    if not host:
        raise _refuse(field, "URL has no host.", status_code)
    if allow_private:
        return url

    literal = _literal_address(host)
    if literal is not None:
        reason = address_block_reason(literal)
        if reason:
            raise _refuse(field, f"Host {literal} is not allowed: {reason}.", status_code)
        if ":" not in host and host != str(literal):
            raise _refuse(field, f"Write the address as {literal}: other numeric spellings are refused.",
                          status_code)
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise _refuse(field, f"Host '{host}' is not allowed: loopback address.", status_code)
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        raise _refuse(field, f"Host '{host}' could not be resolved.", status_code) from None
    if not addresses:
        raise _refuse(field, f"Host '{host}' could not be resolved.", status_code)
    for address in addresses:
        reason = address_block_reason(address)
        if reason:
            raise _refuse(field, f"Host '{host}' resolves to {address}, which is not allowed: {reason}.",
                          status_code)
    return url


def recheck_outbound_url(url: str, *, field: str = "url") -> str:
    """The call-time check: same rules, re-resolving the host now; refused -> 502 (the fault is
    the configured target, not the caller's request)."""
    return check_outbound_url(url, field=field, status_code=502)


async def arecheck_outbound_url(url: str, *, field: str = "url") -> str:
    """:func:`recheck_outbound_url` off the event loop (name resolution blocks)."""
    return await asyncio.to_thread(recheck_outbound_url, url, field=field)


async def httpx_request_guard(request) -> None:
    """An ``httpx`` request event hook: re-checks every request an HTTP client sends, redirects
    included (``httpx.AsyncClient(event_hooks={"request": [httpx_request_guard]})``)."""
    await arecheck_outbound_url(str(request.url))

"""The outbound-URL guard (chatplatform.api.outbound): every spelling of a non-public address is
refused, names are resolved and every address checked, and ALLOW_PRIVATE_OUTBOUND lifts only the
address rules."""

from __future__ import annotations

import socket

import pytest

from chatplatform.api import outbound
from chatplatform.api.outbound import OutboundURLRefused, check_outbound_url, recheck_outbound_url

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://127.0.0.1:8000/v1",
    "http://127.255.255.254/",
    "http://2130706433/",            # decimal
    "http://0x7f000001/",            # hex
    "http://0X7F000001/",            # hex, upper case
    "http://017700000001/",          # octal, whole
    "http://0177.0.0.1/",            # octal first octet
    "http://0x7f.0.0.1/",            # hex first octet
    "http://0x7f.1/",                # short hex
    "http://127.1/",                 # short form
    "http://127.0.1/",               # three-part form
    "http://127.0.0.1./",            # trailing dot
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",    # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/",       # IPv4-mapped, hex form
    "http://[2002:7f00:1::1]/",      # 6to4 wrapping 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[64:ff9b::7f00:1]/",     # NAT64 wrapping 127.0.0.1
    "http://localhost/",
    "http://LOCALHOST:8080/",
    "http://localhost./",
    "http://api.localhost/",
    "http://\u2460\u2461\u2466.0.0.1/",  # circled digits: IDNA/NFKC makes them 127.0.0.1
]

OTHER_BLOCKED = [
    ("http://10.0.0.5/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.10/", "private"),
    ("http://012.0.0.1/", "private"),             # octal 012 = 10
    ("http://167772161/", "private"),             # decimal 10.0.0.1
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://2852039166/", "link-local"),         # decimal 169.254.169.254
    ("http://0xa9fea9fe/", "link-local"),         # hex 169.254.169.254
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://100.127.255.254/", "CGNAT"),
    ("http://[::ffff:100.64.0.1]/", "CGNAT"),
    ("http://[2002:a00:1::1]/", "private"),       # 6to4 wrapping 10.0.0.1
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://192.0.2.10/", "private"),            # TEST-NET-1 (documentation)
    ("http://198.18.0.1/", "private"),            # benchmarking
]


def reason(url: str, **kwargs) -> str:
    with pytest.raises(OutboundURLRefused) as info:
        check_outbound_url(url, field="llm_endpoint_url", **kwargs)
    error = info.value
    assert error.status_code == 422
    assert list(error.details) == ["llm_endpoint_url"]
    return error.details["llm_endpoint_url"][0]


@pytest.fixture
def no_dns(monkeypatch):
    """Fail the test if a literal address is sent to the resolver."""

    def fail(*args, **kwargs):
        raise AssertionError(f"getaddrinfo called for {args[0]!r}")

    monkeypatch.setattr(outbound.socket, "getaddrinfo", fail)


class FakeDNS(dict):
    """Host -> addresses; ``asked`` records every name looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def getaddrinfo(self, host, port, *args, **kwargs):
        self.asked.append(host)
        if host not in self:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in self[host]]


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDNS:
    """Resolve names from a table: ``fake_dns["host"] = ["1.2.3.4", "::1"]``."""
    dns = FakeDNS()
    monkeypatch.setattr(outbound.socket, "getaddrinfo", dns.getaddrinfo)
    return dns


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_every_loopback_spelling_is_refused(url, fake_dns):
    assert "loopback" in reason(url)


@pytest.mark.parametrize(("url", "kind"), OTHER_BLOCKED)
def test_private_link_local_multicast_reserved_and_cgnat_are_refused(url, kind, no_dns):
    text = reason(url)
    expected = {"private": ("private", "non-public"), "CGNAT": ("CGNAT",), "link-local": ("link-local",),
                "multicast": ("multicast",), "unspecified": ("unspecified",), "reserved": ("reserved", "private")}
    assert any(word in text for word in expected[kind]), text


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com:70/", "javascript:alert(1)",
    "ws://example.com/", "//example.com/", "example.com", "",
])
def test_only_http_and_https(url, no_dns):
    text = reason(url)
    assert "http" in text or "required" in text


@pytest.mark.parametrize("url", [
    "http://user:pass@example.com/", "http://user@example.com/", "http://example.com@127.0.0.1/",
    "https://:secret@example.com/",
])
def test_credentials_in_the_url_are_refused(url, no_dns):
    assert "Credentials" in reason(url)


@pytest.mark.parametrize("url", [
    "http://example.com\\@127.0.0.1/", "http://exa mple.com/", "http://example.com/a\nb", "http://a\tb.com/",
    "http://127.0.0.1:99999/", "http://[fe80::1%25eth0]/", "http://[::1/",
])
def test_malformed_urls_are_refused(url, no_dns):
    with pytest.raises((OutboundURLRefused, ValueError)):
        check_outbound_url(url)


def test_public_addresses_pass_and_non_canonical_public_spellings_do_not(no_dns):
    assert check_outbound_url("http://8.8.8.8/v1") == "http://8.8.8.8/v1"
    assert check_outbound_url("https://[2606:4700:4700::1111]:8443/v1")
    assert "8.8.8.8" in reason("http://134744072/")     # decimal 8.8.8.8: write it plainly
    assert "8.8.8.8" in reason("http://0x08080808/")
    assert "8.8.8.8" in reason("http://8.8.2056/")


def test_names_are_resolved_and_every_address_checked(fake_dns):
    fake_dns["api.example.com"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert check_outbound_url("https://api.example.com/v1") == "https://api.example.com/v1"

    fake_dns["rebind.example.com"] = ["93.184.216.34", "127.0.0.1"]  # one bad answer is enough
    assert "127.0.0.1" in reason("https://rebind.example.com/v1")
    fake_dns["metadata.example.com"] = ["169.254.169.254"]
    assert "link-local" in reason("http://metadata.example.com/")
    fake_dns["v6.example.com"] = ["::ffff:10.0.0.1"]
    assert "private" in reason("http://v6.example.com/")
    fake_dns["internal.example.com"] = ["fd00::5"]
    assert "private" in reason("http://internal.example.com/")
    assert "could not be resolved" in reason("http://nowhere.invalid/")
    assert "rebind.example.com" in fake_dns.asked


def test_allow_private_outbound_lifts_only_the_address_rules(settings, no_dns):
    settings.ALLOW_PRIVATE_OUTBOUND = True
    for url in ("http://127.0.0.1:11434/v1", "http://10.0.0.5/v1", "http://[::1]/", "http://2130706433/",
                "http://localhost:8000/v1"):
        assert check_outbound_url(url) == url
    assert "Credentials" in reason("http://user:pw@127.0.0.1/")
    assert "http" in reason("file:///etc/passwd")
    settings.ALLOW_PRIVATE_OUTBOUND = False
    assert "loopback" in reason("http://127.0.0.1:11434/v1")


def test_call_time_recheck_answers_502(fake_dns):
    fake_dns["flip.example.com"] = ["93.184.216.34"]
    assert recheck_outbound_url("https://flip.example.com/v1") == "https://flip.example.com/v1"
    fake_dns["flip.example.com"] = ["10.1.2.3"]  # the DNS answer changed since the URL was saved
    with pytest.raises(OutboundURLRefused) as info:
        recheck_outbound_url("https://flip.example.com/v1", field="llm_endpoint_url")
    assert info.value.status_code == 502 and "llm_endpoint_url" in info.value.details


async def test_httpx_hook_checks_every_request(fake_dns):
    import httpx

    fake_dns["public.example.com"] = ["93.184.216.34"]
    await outbound.httpx_request_guard(httpx.Request("POST", "https://public.example.com/v1/chat/completions"))
    with pytest.raises(OutboundURLRefused):
        await outbound.httpx_request_guard(httpx.Request("GET", "http://169.254.169.254/latest/meta-data/"))

"""Whose address a request is, behind proxies or not, and which allow-list entries are valid."""

import ipaddress

import pytest

from integrations.sync.intake_auth import client_address, networks_errors, path_flow

PROXIES = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00::/64"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        pytest.param("203.0.113.7", "", "203.0.113.7", id="no-proxy"),
        pytest.param("203.0.113.7", "198.51.100.1", "203.0.113.7", id="untrusted-peer-header"),
        pytest.param("10.0.0.2", "203.0.113.7", "203.0.113.7", id="trusted-proxy"),
        pytest.param("10.0.0.2", "", "10.0.0.2", id="trusted-proxy-no-header"),
        pytest.param("10.0.0.2", "198.51.100.1, 203.0.113.7", "203.0.113.7", id="spoof-left"),
        pytest.param("10.0.0.2", "203.0.113.7, 10.0.0.3", "203.0.113.7", id="proxy-chain"),
        pytest.param("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.4", id="all-trusted"),
        pytest.param("10.0.0.2", "203.0.113.7, garbage", "10.0.0.2", id="garbled-hop"),
        pytest.param("10.0.0.2", " 203.0.113.7 ", "203.0.113.7", id="spaces"),
        pytest.param("fd00::5", "2001:db8::7", "2001:db8::7", id="ipv6-proxy"),
        pytest.param("::ffff:10.0.0.2", "203.0.113.7", "203.0.113.7", id="ipv4-mapped-proxy"),
        pytest.param("::ffff:203.0.113.7", "", "203.0.113.7", id="ipv4-mapped-peer"),
        # PostgreSQL's inet refuses a zone: the address without it is the caller's.
        pytest.param("10.0.0.2", "fe80::1%eth0", "fe80::1", id="ipv6-zone"),
        pytest.param("", "203.0.113.7", None, id="no-peer"),
        pytest.param(None, "", None, id="none-peer"),
    ],
)
def test_client_address_behind_trusted_proxies(peer, forwarded_for, expected):
    assert client_address(peer, forwarded_for, proxies=PROXIES, trust_any=False) == expected


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        pytest.param("203.0.113.7, 10.0.0.1", "203.0.113.7", id="left-most"),
        pytest.param("", "192.0.2.1", id="no-header"),
        pytest.param("garbage", "192.0.2.1", id="garbage"),
    ],
)
def test_trusting_any_peer_takes_the_left_most_entry_as_before(forwarded_for, expected):
    assert client_address("192.0.2.1", forwarded_for, proxies=(), trust_any=True) == expected


@pytest.mark.parametrize(
    "text",
    ["", "203.0.113.7", "198.51.100.0/24\n\n2001:db8::/32", "# RDESK\n203.0.113.0/24  # office"],
)
def test_valid_allow_lists(text):
    assert networks_errors(text) == []


def test_invalid_allow_list_entries_are_named_one_by_one():
    assert networks_errors("203.0.113.0/24\nrdesk.example.ru\n10.0.0.5/8") == [
        "“rdesk.example.ru” is not an IPv4 or IPv6 address or network.",
        "“10.0.0.5/8” has host bits set: did you mean 10.0.0.0/8?",
    ]


class FakeFlow:
    def __init__(self, path: str, token_digest: str = ""):
        self.endpoint_path = path
        self.intake_token_digest = token_digest


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/zdrav/booked", ("/zdrav/booked", ""), id="own-path"),
        pytest.param("/zdrav/booked/abc", ("/zdrav/booked", "abc"), id="token-form"),
        pytest.param("/zdrav/mc/abc", None, id="no-token-no-token-form"),
        pytest.param("/zdrav/booked/", None, id="empty-segment"),
        pytest.param("/zdrav/booked/a/b", None, id="two-segments"),
        pytest.param("/zdrav/booked/own", ("/zdrav/booked/own", ""), id="own-path-wins"),
    ],
)
def test_path_flow(path, expected):
    flows = [
        FakeFlow("/zdrav/booked", "digest"),
        FakeFlow("/zdrav/mc"),
        FakeFlow("/zdrav/booked/own"),
    ]
    by_path = {flow.endpoint_path: flow for flow in flows}

    found = path_flow(path, by_path)

    assert (None if found is None else (found[0].endpoint_path, found[1])) == expected

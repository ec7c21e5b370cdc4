"""Which names a certificate covers, and how plan names a certificate change (fingerprints, never keys)."""

import pytest

from swiftdeploy.certificates import change, covers, named_in
from swiftdeploy.model.manifest import Tls


@pytest.mark.parametrize("names, host, covered", [
    (("example.com",), "example.com", True),
    (("Example.COM",), "example.com.", True),
    (("*.example.com",), "shop.example.com", True),
    (("*.example.com",), "example.com", False),  # a wildcard covers one label, not the parent
    (("*.example.com",), "a.b.example.com", False),
    (("example.com",), "shop.example.com", False),
    (("127.0.0.1",), "127.0.0.1", True),
    (("::1",), "0:0:0:0:0:0:0:1", True),
    (("*.0.0.1",), "127.0.0.1", False),  # no wildcards for addresses
    ((), "example.com", False),
])
def test_a_certificate_covers_its_names_and_one_label_under_a_wildcard(names, host, covered):
    assert covers(names, host) is covered


def conf(fingerprint: str, material: str, until: str = "2027-01-06T10:00:00Z") -> str:
    return (f"        # The user's certificate, valid until {until}, sha256:\n        #   {fingerprint}\n"
            f"        # in SwiftDeploy's copy\n        ssl_certificate /run/swiftdeploy-tls/{material}/cert.pem;\n")


def tls(fingerprint: str, until: str = "2027-01-06T10:00:00Z") -> Tls:
    return Tls(cert="c.pem", key="k.pem", fingerprint=fingerprint, material="ab" * 16, not_after=until)


def test_plan_names_a_renewal_by_fingerprints_and_dates():
    old, new = "a1" * 32, "b2" * 32
    assert named_in(conf(old, "cd" * 16)) == (old, "2027-01-06T10:00:00Z", "cd" * 16)
    said = change(conf(old, "cd" * 16), tls(new, "2027-04-01T00:00:00Z"))
    assert said == ("certificate renewed: sha256 A1:A1:A1:A1:A1:A1:A1:A1... (until 2027-01-06T10:00:00Z) -> "
                    "sha256 B2:B2:B2:B2:B2:B2:B2:B2... (until 2027-04-01T00:00:00Z)")
    assert change(conf(old, "cd" * 16), tls(old)) is None
    assert change(None, tls(new)).startswith("https turned on: certificate sha256 B2:B2")
    assert change(conf(old, "cd" * 16), None).startswith("https turned off")
    assert change("plain http only", None) is None

"""Screenshots of a local HTML file in Debian's headless chromium, with the network out of reach, and a check
that the HTML needs no network at all."""

import re
import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def screenshot(html_path: Path, png_path: Path, width: int = 1200, height: int = 2400) -> None:
    """Every fetch goes to a proxy on a closed port, loopback included: a page that needs one shows it broken."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: run scripts/setup"
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", f"--user-data-dir={profile}",
             f"--screenshot={png_path}", f"--window-size={width},{height}", html_path.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png_path.exists(), done.stderr[-2000:]
    assert png_size(png_path) == (width, height)
    assert png_path.stat().st_size > 50_000, "a blank page compresses to a few KB"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def of(self, tag: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag]


def check_self_contained(html: str) -> None:
    """No element or attribute that fetches or runs anything, and a CSP that forbids fetching in any case."""
    elements = Elements(html)
    assert not [tag for tag, _ in elements.tags if tag in ("script", "link", "img", "iframe", "object", "embed")]
    fetching = [(tag, name) for tag, attrs in elements.tags for name in attrs
                if name in ("src", "href", "xlink:href", "srcset", "action", "data") or name.startswith("on")]
    assert fetching == []
    assert not [attrs for _, attrs in elements.tags if "url(" in (attrs.get("style") or "")]
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert not [style for style in styles if "url(" in style or "@import" in style]
    [policy] = [attrs["content"] for attrs in elements.of("meta") if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert policy.startswith("default-src 'none'")

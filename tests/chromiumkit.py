"""Screenshots of a local HTML file in Debian's headless chromium, with the network out of reach."""

import shutil
import struct
import subprocess
from pathlib import Path


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def screenshot(html_path: Path, png_path: Path, width: int = 1200, height: int = 2400) -> None:
    """Every fetch goes to a proxy on a closed port, loopback included: a page that needs one shows it broken."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: run scripts/setup"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
         f"--user-data-dir={png_path.parent / 'chromium-profile'}", f"--screenshot={png_path}",
         f"--window-size={width},{height}", html_path.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png_path.exists(), done.stderr[-2000:]
    assert png_size(png_path) == (width, height)
    assert png_path.stat().st_size > 50_000, "a blank page compresses to a few KB"

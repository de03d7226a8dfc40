"""The report as PDF, printed by headless Chromium (Debian's `chromium`) from the same HTML."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

# Flags for a headless print with no network of its own: no first-run work, no background
# fetches (component updates, sync), a fresh profile each time so runs never share state.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-pdf-header-footer")


class PdfUnavailable(RuntimeError):
    """No Chromium to print with, or it failed: the HTML report still works."""


def chromium() -> str | None:
    """The Chromium executable on PATH, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_pdf(html: str, *, timeout_s: float = 90.0) -> bytes:
    """Print `html` to PDF with headless Chromium; `PdfUnavailable` says why it could not."""
    binary = chromium()
    if binary is None:
        raise PdfUnavailable("PDF needs Chromium (Debian package `chromium`), which is not "
                             "installed; the HTML report works without it (format=html)")
    with tempfile.TemporaryDirectory(prefix="dynamo-report-") as tmp:
        page, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
                   f"--print-to-pdf={pdf}", page.as_uri()]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(f"Chromium did not print the report within {timeout_s:g} s"
                                 ) from None
        if not pdf.is_file() or pdf.stat().st_size == 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise PdfUnavailable(f"Chromium printed no PDF (exit {done.returncode}): "
                                 f"{' / '.join(tail)}")
        return pdf.read_bytes()

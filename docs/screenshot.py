"""Regenerate docs/screenshot.png from what the product renders: `digest init` and `digest
preview` on the bundled sample days in a throwaway folder, the first subscriber's email shot
in headless Chromium.

    python docs/screenshot.py [--width 700] [--height 1400] [--out docs/screenshot.png]

Needs the project installed (`pip install -e .`) and Chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=700)
    parser.add_argument("--height", type=int, default=1400)
    parser.add_argument("--subscriber", default="ada@example.org")
    parser.add_argument("--out", type=Path, default=HERE / "screenshot.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("screenshot: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for step in (["init"], ["preview", "--subscriber", args.subscriber]):
            subprocess.run([sys.executable, "-m", "digest", *step], cwd=work, check=True)
        email = next(p for p in (work / "preview").glob("*.html") if p.name != "index.html")
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={work / 'profile'}", f"--window-size={args.width},{args.height}",
             f"--screenshot={args.out.resolve()}", email.as_uri()],
            check=True, capture_output=True,
        )  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write the application icon: packaging/rfexplorer.svg (source) and the PNGs rendered from it.

    python packaging/make_icon.py

The picture: an input comb (oscillators at geometric frequencies, heights like a pixel row) under the
antisymmetric Lorentzian response of one resonator chain, on the app's dark background. The response curve
comes from engine.physics.resonators, like everything else that draws the physics.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SVG = HERE / "rfexplorer.svg"
PNG = HERE / "rfexplorer.png"
RUNTIME_PNG = ROOT / "rfexplorer" / "resources" / "rfexplorer.png"
RUNTIME_SVG = RUNTIME_PNG.with_suffix(".svg")  # package data for rfexplorer --install-desktop-entry
SIZES = (256,)
_APP = None


def response_path(x0: float, x1: float, y0: float, amp: float, centres: list[float], width: float) -> str:
    sys.path.insert(0, str(ROOT))
    import torch

    from engine.physics.resonators import lineshape

    xs = torch.linspace(x0, x1, 220, dtype=torch.float64)
    ys = torch.zeros_like(xs)
    for k, c in enumerate(centres):
        ys += (-1) ** k * lineshape((xs - c) / width, 0.0)
    pts = [f"{x:.2f},{y0 - amp * y:.2f}" for x, y in zip(xs.tolist(), ys.tolist())]
    return "M " + " L ".join(pts)


def svg_text() -> str:
    bars = []
    heights = [0.25, 0.55, 0.9, 0.7, 0.35, 0.8, 1.0, 0.6, 0.3, 0.75, 0.5, 0.2]
    n = len(heights)
    for i, h in enumerate(heights):
        x = 44 + 168 * (math.log(1 + i * 0.35) / math.log(1 + (n - 1) * 0.35))
        top = 206 - 70 * h
        bars.append(f'<line x1="{x:.1f}" y1="206" x2="{x:.1f}" y2="{top:.1f}" stroke="#9fb4d0" '
                    f'stroke-width="5" stroke-linecap="round"/>')
    curve = response_path(30, 226, 100, 40, [82, 150, 196], 6.0)
    markers = "".join(f'<path d="M {c - 7} {121} L {c + 7} {121} L {c} {109} Z" fill="#ff8c42"/>'
                      if k % 2 == 0 else f'<path d="M {c - 7} {79} L {c + 7} {79} L {c} {91} Z" fill="#ff8c42"/>'
                      for k, c in enumerate([82, 150, 196]))
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <title>rfexplorer</title>
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#2b2f38"/>
      <stop offset="1" stop-color="#1b1d23"/>
    </linearGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="44" fill="url(#bg)" stroke="#3a3f4b" stroke-width="4"/>
  <line x1="30" y1="100" x2="226" y2="100" stroke="#5d6370" stroke-width="2"/>
  {''.join(bars)}
  <path d="{curve}" fill="none" stroke="#5fa8ff" stroke-width="7" stroke-linejoin="round" stroke-linecap="round"/>
  {markers}
</svg>
"""


def render_png(svg: Path, png: Path, size: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    global _APP
    _APP = QGuiApplication.instance() or QGuiApplication([])  # painting text/paths needs an application
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"invalid SVG: {svg}")
    img = QImage(size, size, QImage.Format_ARGB32)
    img.fill(Qt.transparent)
    painter = QPainter(img)
    painter.setRenderHint(QPainter.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not img.save(str(png), "PNG"):
        raise SystemExit(f"could not write {png}")


def main() -> int:
    SVG.write_text(svg_text(), encoding="utf-8")
    render_png(SVG, PNG, SIZES[0])
    RUNTIME_PNG.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PNG, RUNTIME_PNG)
    shutil.copyfile(SVG, RUNTIME_SVG)
    print(f"wrote {SVG.relative_to(ROOT)}, {PNG.relative_to(ROOT)}, {RUNTIME_PNG.relative_to(ROOT)}, "
          f"{RUNTIME_SVG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Checks run in the page (DOM-level accessibility basics) and on screenshots (a sane, non-blank PNG)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

#: WCAG 2.2 AA basics a page can be checked for without axe-core: the language, a label for every control,
#: th with scope, headings in order starting at h1, and text contrast of at least 4.5:1 (3:1 for large text).
A11Y_SCRIPT = """
() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('html has no lang');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.closest('label');
    if (!labelled) problems.push(`no label: ${el.outerHTML.slice(0, 80)}`);
  }
  for (const th of document.querySelectorAll('th')) {
    if (!['col', 'row', 'colgroup', 'rowgroup'].includes(th.getAttribute('scope'))) {
      problems.push(`th without scope: ${th.textContent.trim().slice(0, 40)}`);
    }
  }
  for (const button of document.querySelectorAll('button, a')) {
    if (!(button.textContent.trim() || button.getAttribute('aria-label'))) problems.push('control without a name');
  }
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => Number(h.tagName[1]));
  if (headings[0] !== 1) problems.push(`first heading is h${headings[0]}`);
  if (headings.filter(h => h === 1).length !== 1) problems.push('not exactly one h1');
  headings.forEach((h, i) => {
    if (i && h > headings[i - 1] + 1) problems.push(`heading jumps h${headings[i - 1]}->h${h}`);
  });
  const rgb = s => { const m = s.match(/[\\d.]+/g).map(Number);
    return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg')) continue;
    const text = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent.trim()).join('');
    if (!text) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || box.right < 0 || box.width === 0) continue;
    const fg = rgb(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: ${text.slice(0, 40)}`);
  }
  return problems;
}
"""

FOCUS_SCRIPT = """
() => { const el = document.activeElement; const s = getComputedStyle(el);
  return {tag: el.tagName, id: el.id, text: (el.textContent || '').trim(), cls: el.className,
          outline: s.outlineStyle, outlineWidth: s.outlineWidth}; }
"""


def accessibility_problems(page: Any) -> list[str]:
    problems: list[str] = page.evaluate(A11Y_SCRIPT)
    return problems


def focused(page: Any) -> dict[str, str]:
    found: dict[str, str] = page.evaluate(FOCUS_SCRIPT)
    return found


def tab_to(page: Any, selector: str, limit: int = 80) -> int:
    """Press Tab until the element matching ``selector`` has focus; returns how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return presses
    raise AssertionError(f"{selector} was not reached by keyboard in {limit} presses of Tab")


def rgb_pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    data = image.convert("RGB").tobytes()
    return [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]


def checked_screenshot(page: Any, path: Path) -> Image.Image:
    """Save a full-page screenshot and check it is a real picture of a rendered page (not blank)."""
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert 5_000 < len(data) < 20_000_000, f"odd screenshot size: {len(data)} bytes"
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    assert width == 1280 and 300 <= height <= 20_000, image.size
    small = image.resize((width // 4, height // 4))
    pixels = rgb_pixels(small)
    dark = sum(1 for r, g, b in pixels if r + g + b < 200)
    assert len(set(pixels)) > 20, "the page looks blank (almost one colour)"
    assert 0.01 < dark / len(pixels) < 0.9, f"dark share {dark / len(pixels):.3f}: blank or all black"
    return image

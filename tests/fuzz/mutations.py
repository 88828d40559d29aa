"""Hypothesis strategies that damage real inputs: the mutations a buggy sender, a truncated transfer or an attacker
makes (characters flipped, fields replaced with odd text, delimiters doubled, segments dropped, repeated or
reordered, the end cut off), so the fuzz tests reach deep into parsers that arbitrary text never gets past."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

#: Text that tends to break parsers: delimiters, escapes, controls, non-BMP and combining characters, long runs.
AWKWARD = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "|",
            "^",
            "~",
            "\\",
            "&",
            "\r",
            "\n",
            "\x00",
            "\x0b",
            "\x1c",
            "\ufeff",
            "\\X\\",
            "\\XZZ\\",
            "\\F",
            "é",
            "😀",
            "9999999999",
            "-1",
            "0",
            "99991399",
            "20241301250000",
            "2024",
            "20240315142000+2500",
            "A" * 300,
            "NaN",
            "1e9",
        ]
    ),
)


@st.composite
def mutated_text(draw: st.DrawFn, samples: Sequence[str], separator: str, field_separator: str) -> str:
    """One of ``samples`` with one to five mutations, at the level of lines (``separator``), fields and characters."""
    lines = draw(st.sampled_from(samples)).split(separator)
    for _ in range(draw(st.integers(1, 5))):
        op = draw(st.sampled_from(["field", "char", "drop", "repeat", "swap", "truncate", "insert"]))
        if not lines:
            lines = [""]
        n = draw(st.integers(0, len(lines) - 1))
        if op == "field":
            fields = lines[n].split(field_separator)
            k = draw(st.integers(0, len(fields)))
            value = draw(AWKWARD)
            if k < len(fields):
                fields[k] = value
            else:
                fields.append(value)
            lines[n] = field_separator.join(fields)
        elif op == "char":
            line = lines[n]
            at = draw(st.integers(0, len(line)))
            lines[n] = line[:at] + draw(st.text(min_size=1, max_size=3)) + line[at + 1 :]
        elif op == "drop":
            del lines[n]
        elif op == "repeat":
            lines.insert(n, lines[n])
        elif op == "swap":
            m = draw(st.integers(0, len(lines) - 1))
            lines[n], lines[m] = lines[m], lines[n]
        elif op == "truncate":
            text = separator.join(lines)
            lines = text[: draw(st.integers(0, len(text)))].split(separator)
        else:
            lines.insert(n, draw(AWKWARD))
    return separator.join(lines)

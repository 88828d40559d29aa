"""Load generators run as separate processes: wrk (with a Lua script cycling through request paths) and hey.

Each run returns a :class:`Measurement`; a run in which any response was not 2xx, or any socket error happened,
raises :class:`LoadError` (a benchmark of error pages is worthless).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

LUA = Path(__file__).with_name("wrk_paths.lua")


class LoadError(RuntimeError):
    """The load tool saw errors: non-2xx responses, socket errors or timeouts."""


@dataclass
class Measurement:
    tool: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise SystemExit(f"{tool} is not installed: run scripts/bench-deps")
    return found


def wrk(base_url: str, paths_file: Path, *, connections: int, threads: int, seconds: float) -> Measurement:
    """``wrk -t threads -c connections -d seconds`` cycling through the paths in ``paths_file``."""
    threads = max(1, min(threads, connections))
    cmd = [
        require("wrk"),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url,
        "--",
        str(paths_file),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LoadError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise LoadError(f"wrk printed no figures:\n{out.stdout}\n{out.stderr}")
    figures = json.loads(line[len("WRKJSON ") :])
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    errors = {k: figures[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "status_errors")}
    if non_2xx or any(errors.values()):
        raise LoadError(
            f"wrk against {base_url} ({paths_file.name}): "
            f"{non_2xx.group(1) if non_2xx else 0} non-2xx responses, errors {errors}"
        )
    duration = figures["duration_us"] / 1e6
    return Measurement(
        tool="wrk",
        connections=connections,
        seconds=round(duration, 2),
        requests=figures["requests"],
        rps=figures["requests"] / duration,
        p50_ms=figures["p50_us"] / 1000,
        p90_ms=figures["p90_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
    )


def hey(url: str, *, connections: int, seconds: float) -> Measurement:
    """``hey -z seconds -c connections url`` (one URL: hey cannot cycle through a list)."""
    cmd = [require("hey"), "-z", f"{max(1, round(seconds))}s", "-c", str(connections), "-H",
           "Accept: application/fhir+json", url]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LoadError(f"hey failed ({out.returncode}): {out.stderr.strip()}")
    text = out.stdout
    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    bad = {code: n for code, n in statuses.items() if not 200 <= code < 300}
    if bad or not statuses or "Error distribution" in text:
        raise LoadError(f"hey against {url}: statuses {statuses}\n{text[-2000:]}")

    def figure(pattern: str) -> float:
        m = re.search(pattern, text)
        if m is None:
            raise LoadError(f"hey output lacks {pattern!r}:\n{text}")
        return float(m.group(1))

    def percentile(p: int) -> float:
        return figure(rf"\s{p}%% in ([\d.]+) secs".replace("%%", "%")) * 1000

    total = figure(r"Total:\s+([\d.]+) secs")
    return Measurement(
        tool="hey",
        connections=connections,
        seconds=round(total, 2),
        requests=sum(statuses.values()),
        rps=figure(r"Requests/sec:\s+([\d.]+)"),
        p50_ms=percentile(50),
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        max_ms=figure(r"Slowest:\s+([\d.]+) secs") * 1000,
    )

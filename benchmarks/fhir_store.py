"""The FHIR store benchmark of issue 2: a synthetic ICS in PostgreSQL, the gateway under wrk, and its floor.

    .venv/bin/python -m benchmarks.fhir_store                          # 10,000 young people (~170,000 resources)
    .venv/bin/python -m benchmarks.fhir_store --young-people 100000    # ~1.7 million resources (the issue's target)
    .venv/bin/python -m benchmarks.fhir_store --skip-load              # reuse the database loaded last time

Steps, all in one run:

1. Generate the ICS (:mod:`benchmarks.ics`, seeded) and bulk-load it into the database ``kwg_bench`` (dropped and
   re-created, migrated with ``gateway.store.migrate.upgrade``, rows built by ``gateway.store.rows``, COPY).
2. Start the gateway as its own process tree, ``kwg serve --workers W`` with production settings, and the floor
   (:mod:`benchmarks.floor_app`: bare Starlette + raw asyncpg over the same tables) with the same worker count.
3. Check a sample of answers from both for correctness (status, matches, includes, order) before timing.
4. Drive each with wrk (``--clients`` connections, a Lua script cycling through 2,000 young people's paths):
   read by id, ``Patient?identifier=``, ``CareTeam?patient.identifier=&status=active``,
   ``EpisodeOfCare?patient=&status=active&_include=EpisodeOfCare:care-manager``,
   ``Encounter?patient=&date=ge&_sort=-date&_count=20``; read by id on one connection; gateway and floor
   alternate query by query so both see the same machine. Any non-2xx response fails the run.
5. Cross-check one or more queries with hey (a second load tool), on one URL with both tools.
6. Transaction ingest: young people as transaction Bundles with ``urn:uuid`` references, validated on write.
7. Print a table (req/s, p50, p99, gateway/floor ratio, the issue's targets) and write
   ``benchmarks/results/<UTC timestamp>.json``. ``--profile DIR``: py-spy samples of one gateway worker
   under the read and identifier loads, summarised by function and by package.

Needs wrk and hey (``scripts/bench-deps``), PostgreSQL at ``--dsn``, and py-spy for ``--profile``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from benchmarks import drive, ics
from benchmarks.drive import Measurement

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("results")
VENV_BIN = Path(sys.executable).parent
SAMPLE = 2000  # young people whose paths the load cycles through
CHECKED = 25  # young people whose answers are checked per query and server


@dataclass(frozen=True)
class Query:
    key: str
    title: str
    path: Callable[[ics.YoungPerson], str]
    check: Callable[[ics.YoungPerson, dict[str, Any]], str | None]  # a problem, or None when the answer is right
    target_rps: float
    target_p99_ms: float


def _ids(bundle: dict[str, Any], mode: str) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def _types(bundle: dict[str, Any], mode: str) -> list[str]:
    return [e["resource"]["resourceType"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == mode]


def _expect(found: Any, wanted: Any, what: str) -> str | None:
    return None if found == wanted else f"{what}: expected {wanted!r}, got {found!r}"


def _check_read(p: ics.YoungPerson, doc: dict[str, Any]) -> str | None:
    return _expect(
        (doc.get("resourceType"), doc.get("id"), doc["identifier"][0]["value"]),
        ("Patient", p.patient_id, p.nhs),
        "read",
    )


def _check_identifier(p: ics.YoungPerson, b: dict[str, Any]) -> str | None:
    return _expect(_ids(b, "match"), [p.patient_id], "identifier matches")


def _check_care_team(p: ics.YoungPerson, b: dict[str, Any]) -> str | None:
    return _expect(_ids(b, "match"), [p.care_team_id], "CareTeam matches")


def _check_episode(p: ics.YoungPerson, b: dict[str, Any]) -> str | None:
    return _expect(_ids(b, "match"), [p.active_episode_id], "EpisodeOfCare matches") or _expect(
        list(zip(_types(b, "include"), _ids(b, "include"), strict=True)),
        [("Practitioner", p.care_manager_id)],
        "EpisodeOfCare includes",
    )


def _check_encounters(p: ics.YoungPerson, b: dict[str, Any]) -> str | None:
    found = _ids(b, "match")
    wanted = p.encounters_since(ics.ENCOUNTER_CUTOFF)[:20]
    if sorted(found) != sorted(wanted):
        return f"Encounter matches: expected {len(wanted)} {sorted(wanted)}, got {len(found)} {sorted(found)}"
    starts = [p.encounter_starts[i] for i in found]
    return None if starts == sorted(starts, reverse=True) else "Encounter matches not sorted by -date"


def _q(params: list[tuple[str, str]]) -> str:
    return urlencode(params)


NHS = ics.NHS_SYSTEM
CUTOFF = ics.ENCOUNTER_CUTOFF.isoformat()
QUERIES = [
    Query("read", "GET Patient/{id}", lambda p: f"/fhir/Patient/{p.patient_id}", _check_read, 3000, 30),
    Query(
        "identifier",
        "Patient?identifier=nhs|{n}",
        lambda p: "/fhir/Patient?" + _q([("identifier", f"{NHS}|{p.nhs}")]),
        _check_identifier,
        1500,
        30,
    ),
    Query(
        "careteam",
        "CareTeam?patient.identifier=nhs|{n}&status=active",
        lambda p: "/fhir/CareTeam?" + _q([("patient.identifier", f"{NHS}|{p.nhs}"), ("status", "active")]),
        _check_care_team,
        1500,
        30,
    ),
    Query(
        "episode",
        "EpisodeOfCare?patient={id}&status=active&_include=EpisodeOfCare:care-manager",
        lambda p: (
            "/fhir/EpisodeOfCare?"
            + _q([("patient", p.patient_id), ("status", "active"), ("_include", "EpisodeOfCare:care-manager")])
        ),
        _check_episode,
        600,
        50,
    ),
    Query(
        "encounter",
        f"Encounter?patient={{id}}&date=ge{CUTOFF}&_sort=-date&_count=20",
        lambda p: (
            "/fhir/Encounter?"
            + _q([("patient", p.patient_id), ("date", f"ge{CUTOFF}"), ("_sort", "-date"), ("_count", "20")])
        ),
        _check_encounters,
        1500,
        30,
    ),
]
SINGLE_CONNECTION_P99_MS = 3.0
FLOOR_RATIO = 0.6
INGEST_TARGET = 750.0


# -- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def workers(self) -> list[int]:
        """Pids of the uvicorn worker processes (children started by multiprocessing's spawn)."""
        pids = []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        for pid in children.read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                pids.append(int(pid))
        return pids or [self.process.pid]


def start(name: str, cmd: list[str], env: dict[str, str], port: int, log_dir: Path) -> Server:
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(server)
    raise SystemExit(f"{name} did not become ready:\n{log.read_text()[-3000:]}")


def stop(server: Server) -> None:
    """Stop the server's own process group (it was started in a session of its own)."""
    if server.process.poll() is not None:
        return
    os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()


@contextmanager
def servers(args: argparse.Namespace, sqlalchemy_url: str, dsn: str, log_dir: Path) -> Iterator[tuple[Server, Server]]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("KWG_")}
    gateway_env = {
        **base_env,
        "KWG_ENV": "development",
        "KWG_AUTH": "off",  # the benchmark measures the store, not token checks
        "KWG_DATABASE_URL": sqlalchemy_url,
        "KWG_HOME": str(log_dir / "home"),
        "KWG_LOG_LEVEL": "WARNING",
        "KWG_RATE_LIMIT_PER_MINUTE": "0",  # one load generator is one client: measure the gateway, not its limit
    }
    port = free_port()
    gateway_cmd = [str(VENV_BIN / "kwg"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    gateway_cmd += ["--workers", str(args.workers), "--log-level", "warning"]
    gateway = start("gateway", gateway_cmd, gateway_env, port, log_dir)
    floor: Server | None = None
    try:
        floor_env = {**base_env, "KWG_BENCH_FLOOR_DSN": dsn, "KWG_BENCH_FLOOR_POOL": "20"}
        floor_port = free_port()
        floor_cmd = [str(VENV_BIN / "uvicorn"), "benchmarks.floor_app:create_app", "--factory", "--host", "127.0.0.1"]
        floor_cmd += ["--port", str(floor_port), "--workers", str(args.workers), "--log-level", "warning"]
        floor_cmd += ["--no-access-log"]
        floor = start("floor", floor_cmd, floor_env, floor_port, log_dir)
        yield gateway, floor
    finally:
        if floor is not None:
            stop(floor)
        stop(gateway)


# -- correctness -----------------------------------------------------------------------------------------------


def check_answers(server: Server, people: list[ics.YoungPerson]) -> dict[str, list[str]]:
    """For each query, the (entry ids, modes) each checked young person got: to compare gateway and floor."""
    seen: dict[str, list[str]] = {}
    with httpx.Client(base_url=server.url, timeout=30, headers={"Accept": "application/fhir+json"}) as client:
        for query in QUERIES:
            got = []
            for person in people:
                path = query.path(person)
                response = client.get(path)
                if response.status_code != 200:
                    raise SystemExit(f"{server.name} {path}: HTTP {response.status_code}\n{response.text[:1500]}")
                doc = orjson.loads(response.content)
                problem = query.check(person, doc)
                if problem:
                    raise SystemExit(f"{server.name} {path}: wrong answer: {problem}")
                entries = doc.get("entry", [])
                got.append(",".join(f"{e['search']['mode']}:{e['resource']['id']}" for e in entries) or doc["id"])
            seen[query.key] = got
    return seen


# -- figures ---------------------------------------------------------------------------------------------------


@dataclass
class QueryFigures:
    query: Query
    gateway: Measurement
    floor: Measurement

    @property
    def ratio(self) -> float:
        return self.gateway.rps / self.floor.rps if self.floor.rps else 0.0

    def verdict(self) -> str:
        misses = []
        if self.gateway.rps < self.query.target_rps:
            misses.append(f"rps {self.gateway.rps / self.query.target_rps:.0%} of target")
        if self.query.key != "read" and self.gateway.p99_ms > self.query.target_p99_ms:
            misses.append(f"p99 {self.gateway.p99_ms / self.query.target_p99_ms:.1f}x target")
        if self.ratio < FLOOR_RATIO:
            misses.append(f"ratio < {FLOOR_RATIO}")
        return "met" if not misses else "missed: " + ", ".join(misses)


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    load: dict[str, Any] | None = None
    queries: list[QueryFigures] = field(default_factory=list)
    single: dict[str, Measurement] = field(default_factory=dict)
    cross_checks: list[dict[str, Any]] = field(default_factory=list)
    ingest: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "machine": self.machine,
            "settings": self.settings,
            "load": self.load,
            "queries": [
                {
                    "key": f.query.key,
                    "query": f.query.title,
                    "gateway": f.gateway.as_dict(),
                    "floor": f.floor.as_dict(),
                    "ratio": round(f.ratio, 3),
                    "target": {"rps": f.query.target_rps, "p99_ms": f.query.target_p99_ms, "floor_ratio": FLOOR_RATIO},
                    "verdict": f.verdict(),
                }
                for f in self.queries
            ],
            "single_connection_read": {k: m.as_dict() for k, m in self.single.items()},
            "cross_checks": self.cross_checks,
            "ingest": self.ingest,
            "profiles": self.profiles,
        }


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    mem_kb = int(
        next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal"))
    )
    try:
        pg = subprocess.run(["psql", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        pg = "unknown"
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql_client": pg,
        "load_average_at_start": os.getloadavg(),
    }


def _ms(m: Measurement) -> str:
    return f"{m.rps:>8,.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f}"


def print_report(report: Report) -> None:
    print()
    print(f"{'query':<14} {'gateway req/s':>13} {'p50':>7} {'p99':>7} | {'floor req/s':>11} {'p50':>7} {'p99':>7} |"
          f" {'ratio':>5}  verdict")  # fmt: skip
    for f in report.queries:
        print(f"{f.query.key:<14} {' ' * 5}{_ms(f.gateway)} |   {_ms(f.floor)} | {f.ratio:>5.2f}  {f.verdict()}")
    for name, m in report.single.items():
        verdict = "met" if name == "gateway" and m.p99_ms <= SINGLE_CONNECTION_P99_MS else ""
        print(
            f"read, 1 connection, {name:<8}: {m.rps:,.0f} req/s, p50 {m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms {verdict}"
        )
    for c in report.cross_checks:
        w, h = c["wrk"], c["hey"]
        print(
            f"cross-check {c['query']} (one URL, gateway): wrk {w['rps']:,.0f} req/s p99 {w['p99_ms']:.1f} ms;"
            f" hey {h['rps']:,.0f} req/s p99 {h['p99_ms']:.1f} ms"
        )
    for i in report.ingest:
        print(
            f"transaction ingest, {i['clients']} client(s), {i['bundles']} Bundles of ~{i['resources_per_bundle']}"
            f" resources: {i['resources_per_second']:,.0f} resources/s (target {INGEST_TARGET:,.0f})"
        )


# -- ingest ----------------------------------------------------------------------------------------------------


def bundles_for(seed: int, first: int, bundles: int, per_bundle: int, pool: ics.Pools) -> list[tuple[bytes, int]]:
    out = []
    for b in range(bundles):
        entries: list[dict[str, Any]] = []
        for i in range(per_bundle):
            entries += ics.transaction_entries(ics.young_person(seed, first + b * per_bundle + i, pool))
        out.append((orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}), len(entries)))
    return out


async def ingest(url: str, bodies: list[tuple[bytes, int]], clients: int) -> tuple[float, int]:
    """POST the Bundles from ``clients`` concurrent clients; (seconds, resources). Every entry must be 201."""
    queue = list(bodies)
    resources = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal resources
        while queue:
            body, count = queue.pop()
            response = await client.post("/fhir", content=body, headers={"Content-Type": "application/fhir+json"})
            if response.status_code != 200:
                raise SystemExit(f"transaction failed: HTTP {response.status_code}\n{response.text[:2000]}")
            statuses = [e["response"]["status"] for e in orjson.loads(response.content)["entry"]]
            if len(statuses) != count or any(not s.startswith("201") for s in statuses):
                raise SystemExit(f"transaction answered {Counter(statuses)} for {count} entries")
            resources += count

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return time.perf_counter() - started, resources


# -- profiling -------------------------------------------------------------------------------------------------


def _package(frame: str) -> str:
    """A frame ``func (path:line)`` as the package it runs in: gateway.store, sqlalchemy, asyncpg, uvicorn..."""
    where = frame.rsplit("(", 1)[-1].rstrip(")")
    path = where.rsplit(":", 1)[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "/work/main/" in path or path.startswith(("gateway/", "benchmarks/", "mappings/")):
        rel = path.split("/work/main/", 1)[-1]
        return ".".join(rel.split("/")[:2]).removesuffix(".py")
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")
    return path or frame


def summarise_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)] if total else []

    return {"samples": total, "own": share(own), "inclusive": share(inclusive), "packages": share(packages)}


def profile(server: Server, query: Query, paths: Path, args: argparse.Namespace, out_dir: Path) -> dict[str, Any]:
    worker = server.workers()[0]
    raw = out_dir / f"{query.key}.txt"
    seconds = max(5, round(args.duration / 2))
    spy = subprocess.Popen(
        [str(VENV_BIN / "py-spy"), "record", "--pid", str(worker), "--duration", str(seconds), "--rate", "200",
         "--format", "raw", "--output", str(raw), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(0.5)
    drive.wrk(server.url, paths, connections=args.clients, threads=args.threads, seconds=seconds)
    _, err = spy.communicate(timeout=seconds + 30)
    if spy.returncode != 0 or not raw.exists():
        return {"error": err.decode(errors="replace")[-500:]}
    summary = summarise_profile(raw)
    print(f"\nprofile of one gateway worker under {query.key} ({summary['samples']} samples; raw: {raw})")
    print("  by package (own time): " + ", ".join(f"{n} {p}%" for n, p in summary["packages"][:12]))
    print("  own time:")
    for name, pct in summary["own"][:15]:
        print(f"    {pct:5.1f}%  {name}")
    print("  inclusive:")
    for name, pct in summary["inclusive"][:25]:
        print(f"    {pct:5.1f}%  {name}")
    return summary


# -- main ------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--young-people", type=int, default=10_000, help="young people in the ICS (100000: ~1.7M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the gateway and of the floor")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load per query and server")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of untimed load before each timed run")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--skip-load", action="store_true", help="reuse the loaded database")
    parser.add_argument("--dsn", default="postgresql://root@127.0.0.1:5432", help="PostgreSQL server (no database)")
    parser.add_argument("--database", default="kwg_bench")
    parser.add_argument("--admin-database", default="test", help="database to connect to while re-creating")
    parser.add_argument("--queries", default=",".join(q.key for q in QUERIES), help="comma-separated query keys")
    parser.add_argument("--cross-check", default="read,identifier", help="queries also driven by hey ('' for none)")
    parser.add_argument("--ingest-bundles", type=int, default=12, help="transaction Bundles per ingest run (0: skip)")
    parser.add_argument("--ingest-people", type=int, default=12, help="young people per Bundle (~17 resources each)")
    parser.add_argument("--profile", type=Path, help="folder for py-spy profiles of a gateway worker")
    args = parser.parse_args()
    wanted = {k.strip() for k in args.queries.split(",") if k.strip()}
    queries = [q for q in QUERIES if q.key in wanted]
    dsn = f"{args.dsn.rstrip('/')}/{args.database}"
    sqlalchemy_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    report = Report(
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine(),
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    )
    print(f"machine: {report.machine['cpus']} CPUs ({report.machine['cpu']}), {report.machine['memory_gib']} GiB,"
          f" load average {report.machine['load_average_at_start']}")  # fmt: skip

    if not args.skip_load:
        from benchmarks import load
        from gateway.settings import Settings
        from gateway.store.migrate import upgrade

        print(f"loading {args.young_people:,} young people into {args.database} ...")
        asyncio.run(load.recreate_database(f"{args.dsn.rstrip('/')}/{args.admin_database}", args.database))
        with tempfile.TemporaryDirectory(prefix="kwg-bench-") as home:
            upgrade(Settings(home=home, database_url=sqlalchemy_url), url=sqlalchemy_url)  # type: ignore[arg-type]
        stats = asyncio.run(load.load(dsn, args.young_people, args.seed))
        report.load = vars(stats)
        print(
            f"loaded {stats.resources:,} resources in {stats.seconds:.0f} s ({stats.resources / stats.seconds:,.0f}/s:"
            f" build {stats.build_seconds:.0f} s, COPY {stats.copy_seconds:.0f} s, indexes {stats.index_seconds:.0f} s,"
            f" vacuum/analyse {stats.analyse_seconds:.0f} s)"
        )

    pool = ics.pools(args.seed)
    rng = random.Random(args.seed + 17)
    indexes = rng.sample(range(args.young_people), min(SAMPLE, args.young_people))
    people = [ics.young_person(args.seed, i, pool) for i in indexes]
    checked = people[:CHECKED]

    with tempfile.TemporaryDirectory(prefix="kwg-bench-run-") as tmp:
        run_dir = Path(tmp)
        (run_dir / "home").mkdir()
        path_files: dict[str, Path] = {}
        for query in QUERIES:
            path_files[query.key] = run_dir / f"{query.key}.paths"
            path_files[query.key].write_text("\n".join(query.path(p) for p in people) + "\n")
        with servers(args, sqlalchemy_url, dsn, run_dir) as (gateway, floor):
            print(f"gateway {gateway.url} (workers {gateway.workers()}), floor {floor.url} (workers {floor.workers()})")
            answers = {s.name: check_answers(s, checked) for s in (gateway, floor)}
            for query in QUERIES:
                if answers["gateway"][query.key] != answers["floor"][query.key]:
                    raise SystemExit(f"{query.key}: the gateway and the floor return different entries")
            print(f"answers checked: {CHECKED} young people x {len(QUERIES)} queries, gateway and floor agree")

            def timed(server: Server, paths: Path, connections: int) -> Measurement:
                if args.warmup > 0:
                    drive.wrk(server.url, paths, connections=connections, threads=args.threads, seconds=args.warmup)
                return drive.wrk(
                    server.url, paths, connections=connections, threads=args.threads, seconds=args.duration
                )

            for query in queries:
                g = timed(gateway, path_files[query.key], args.clients)
                f = timed(floor, path_files[query.key], args.clients)
                report.queries.append(QueryFigures(query, g, f))
                print(f"  {query.key:<11} gateway {_ms(g)} | floor {_ms(f)} | ratio {g.rps / f.rps:.2f}")
            if "read" in wanted:
                for server in (gateway, floor):
                    report.single[server.name] = timed(server, path_files["read"], 1)
                    m = report.single[server.name]
                    print(f"  read, 1 connection, {server.name}: {_ms(m)}")

            for key in [k.strip() for k in args.cross_check.split(",") if k.strip()]:
                query = next(q for q in QUERIES if q.key == key)
                one = run_dir / f"{key}.one"
                one.write_text(query.path(people[0]) + "\n")
                seconds = max(5.0, args.duration / 2)
                w = drive.wrk(gateway.url, one, connections=args.clients, threads=args.threads, seconds=seconds)
                h = drive.hey(gateway.url + query.path(people[0]), connections=args.clients, seconds=seconds)
                report.cross_checks.append(
                    {"query": key, "url": query.path(people[0]), "wrk": w.as_dict(), "hey": h.as_dict()}
                )
                print(f"  cross-check {key}: wrk {_ms(w)} | hey {_ms(h)}")

            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                for key in ("read", "identifier"):
                    query = next(q for q in QUERIES if q.key == key)
                    report.profiles[key] = profile(gateway, query, path_files[key], args, args.profile)

            if args.ingest_bundles > 0:
                first = args.young_people
                for clients in sorted({1, args.workers}):
                    bodies = bundles_for(args.seed, first, args.ingest_bundles + 1, args.ingest_people, pool)
                    first += (args.ingest_bundles + 1) * args.ingest_people
                    asyncio.run(ingest(gateway.url, bodies[:1], 1))  # warm-up: validators, statements
                    seconds, resources = asyncio.run(ingest(gateway.url, bodies[1:], clients))
                    report.ingest.append(
                        {
                            "clients": clients,
                            "bundles": args.ingest_bundles,
                            "resources_per_bundle": round(resources / args.ingest_bundles),
                            "resources": resources,
                            "seconds": round(seconds, 2),
                            "resources_per_second": resources / seconds,
                            "validation": "structure (fhir.resources) on every entry; no profiles claimed",
                        }
                    )
                    print(f"  ingest, {clients} client(s): {resources / seconds:,.0f} resources/s")

    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()

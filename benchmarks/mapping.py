"""Mapping throughput: keyworking records per second on one core, domain → FHIR and back.

    .venv/bin/python -m benchmarks.mapping                 # about 15 s
    .venv/bin/python -m benchmarks.mapping --seconds 5     # longer runs per measurement

The records are the representative ones of the golden tests (``tests/mappings/records/*.json``), one of each kind,
with their ids varied so nothing can be cached. Per kind and for the even mix it measures:

- ``to FHIR``: ``mapping.to_fhir(record)`` (dicts only);
- ``write path``: what a domain-API write costs in mapping: the JSON body validated into the record
  (``model_validate_json``), mapped, and the resources serialised with orjson;
- ``from FHIR``: ``mapping.from_fhir(kind, resources)`` over the resources ``to FHIR`` produced (a domain-API read);
- baseline, measured in the same run: ``fhir.resources`` validating the same resources
  (``mappings.fhir.validate_structure``, what the store runs on every write), to show the mapping's share.

The process is single-threaded, so records/s is records/s/core. The target (issue 3) is ≥ 2,000.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from mappings.fhir import validate_structure
from mappings.keyworking.mapping import from_fhir, to_fhir
from mappings.keyworking.records import CareTeam, Contact, KeyworkingCase, Person, Record, RegisterEntry, ReviewMeeting

RECORDS = Path(__file__).resolve().parents[1] / "tests" / "mappings" / "records"
KINDS: dict[str, type[Record]] = {
    "person": Person,
    "register-entry": RegisterEntry,
    "keyworking-case": KeyworkingCase,
    "care-team": CareTeam,
    "contact": Contact,
    "review-meeting": ReviewMeeting,
}
TARGET = 2000
VARIANTS = 200


def bodies(kind: str) -> list[bytes]:
    """JSON request bodies of one kind, ids varied."""
    data = json.loads((RECORDS / f"{kind}.json").read_text())
    out = []
    for n in range(VARIANTS):
        data["id"] = f"{kind[:12]}-{n:06d}"
        out.append(json.dumps(data).encode())
    return out


def rate(work: Callable[[Any], object], items: list[Any], seconds: float) -> float:
    """Items per second, repeating the list until ``seconds`` have passed (after one warm-up pass)."""
    for item in items:
        work(item)
    gc.collect()
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for item in items:
            work(item)
        done += len(items)
    return done / elapsed


def measure(kind: str | None, seconds: float) -> dict[str, float]:
    kinds = [kind] if kind else list(KINDS)
    raw = [(KINDS[k], body) for k in kinds for body in bodies(k)]
    raw = [raw[i] for i in sorted(range(len(raw)), key=lambda i: (i % VARIANTS, i))]  # interleave the kinds
    records = [model.model_validate_json(body) for model, body in raw]
    resources = [(type(r), to_fhir(r)) for r in records]
    flat = [resource for _, rs in resources for resource in rs]
    per_record = len(flat) / len(records)

    def write(item: tuple[type[Record], bytes]) -> object:
        return orjson.dumps(to_fhir(item[0].model_validate_json(item[1])))

    return {
        "to_fhir": rate(to_fhir, records, seconds),
        "write_path": rate(write, raw, seconds),
        "from_fhir": rate(lambda item: from_fhir(item[0], item[1]), resources, seconds),
        "baseline_validate": rate(validate_structure, flat, seconds) / per_record,
        "resources_per_record": per_record,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="time per measurement (default 0.4)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON as well")
    args = parser.parse_args()

    print(f"python {platform.python_version()} on {platform.machine()}; one process, one thread; target ≥ {TARGET:,}")
    header = (
        f"{'kind':16} {'res/rec':>7} {'to FHIR':>10} {'write path':>11} {'from FHIR':>10} "
        f"{'fhir.resources':>15} {'write/target':>12}"
    )
    print(header)
    print("-" * len(header))
    results: dict[str, dict[str, float]] = {}
    for kind in [*KINDS, None]:
        name = kind or "mix"
        r = measure(kind, args.seconds)
        results[name] = r
        print(
            f"{name:16} {r['resources_per_record']:7.1f} {r['to_fhir']:10,.0f} {r['write_path']:11,.0f} "
            f"{r['from_fhir']:10,.0f} {r['baseline_validate']:15,.0f} {r['write_path'] / TARGET:11.1f}×"
        )
    print(
        "\nrecords/s on one core. 'fhir.resources' is the baseline: records/s at which fhir.resources validates the "
        "same resources (the store does that on every write): mapping a record costs "
        f"{results['mix']['baseline_validate'] / results['mix']['write_path']:.2f} of validating what it produces."
    )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

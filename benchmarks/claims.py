"""The seed sweep behind the claims appendix (``make claims``).

Runs every chapter in the quick profile under ``SELFSUP_SEED`` = 0..9 (non-strict, so
a failed claim is recorded, not raised), collects every :func:`selfsup.book.claim`
each run states, and writes

- ``benchmarks/claims.json``: per chapter and seed, the wall time, the claims (value,
  comparison, threshold, verdict, margin) and any cell error;
- ``benchmarks/claims.md``: the table that ``book/claims.md`` shows.

Usage::

    python benchmarks/claims.py                      # every chapter, seeds 0-9, 2 jobs
    python benchmarks/claims.py --chapters flows vae --seeds 0 3
    python benchmarks/claims.py --report             # rewrite claims.md from the JSON
    python benchmarks/claims.py --collect /tmp/selfsup-claims-*   # an interrupted sweep

Runs of a subset are merged into the existing JSON, so a sweep can be redone chapter
by chapter. A run on a GPU (``--profile full``) fills the "full profile" column.
Each run executes the chapter alone in an empty folder with nbclient, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("*.md"))
JSON = ROOT / "benchmarks" / "claims.json"
MD = ROOT / "benchmarks" / "claims.md"
SEEDS = list(range(10))


def _lines(path: Path) -> list[str]:
    """The lines of a file a run appends to (none if the run wrote nothing)."""
    return path.read_text().splitlines() if path.exists() else []


def run_one(chapter: str, seed: int, profile: str, out: Path) -> None:
    """Execute one chapter under one seed (in this process) and write its record."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(ROOT / "chapters" / f"{chapter}.md")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"claims-{chapter}-") as work:
        log = Path(work) / "claims.jsonl"
        os.environ.update(
            SELFSUP_SEED=str(seed), SELFSUP_PROFILE=profile, SELFSUP_STRICT="0",
            SELFSUP_CLAIMS_LOG=str(log), SELFSUP_PROGRESS="0",
            SELFSUP_DATA_LOG=str(Path(work) / "data.txt"),
        )  # fmt: skip
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        cells = Path(work) / "cells.jsonl"  # each code cell's time, as soon as it ends
        clock = [time.perf_counter()]

        def timed(cell, cell_index, **_):
            now = time.perf_counter()
            if cell.cell_type == "code":
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                with cells.open("a") as f:
                    f.write(json.dumps([cell_index, round(now - clock[0], 2), first[:80]]) + "\n")
            clock[0] = now

        NotebookClient(
            notebook, timeout=1800, kernel_name="python3", allow_errors=True,
            resources={"metadata": {"path": work}}, on_cell_executed=timed,
        ).execute()  # fmt: skip
        claims = [json.loads(line) for line in _lines(log)]
        cell_times = [json.loads(line) for line in _lines(cells)]
        # The image sets the chapter loaded (selfsup.data.images logs each): a chapter
        # may keep the 8x8 digits, or use no images, in the full profile.
        used = list(dict.fromkeys(_lines(Path(work) / "data.txt")))
    errors = [
        f"{o.get('ename')}: {o.get('evalue')}"[:500]
        for cell in notebook.cells if cell.cell_type == "code"
        for o in cell.get("outputs", []) if o.get("output_type") == "error"
    ]  # fmt: skip
    printed = "".join(
        o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
        for o in cell.get("outputs", []) if o.get("output_type") == "stream"
    )  # fmt: skip
    device = re.search(r"selfsup runtime: device=([^,]+),", printed)
    # What a cell printed on stderr (a warning) fails the book build (-W): record it.
    stderr = [
        o.get("text", "")[:500]
        for cell in notebook.cells if cell.cell_type == "code"
        for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"
    ]  # fmt: skip
    record = {
        "seconds": round(time.perf_counter() - start, 1), "claims": claims, "errors": errors,
        "stderr": stderr, "cells": cell_times,
        "device": f"{device.group(1) if device else '?'} ({_accelerator_name()})",
        "data": "; ".join(used) or "no image data",
    }  # fmt: skip
    out.write_text(json.dumps(record, indent=1) + "\n")


def sweep(chapters: list[str], seeds: list[int], profile: str, jobs: int) -> dict:
    """Run every (chapter, seed) in a child process, ``jobs`` at a time."""
    results: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="selfsup-claims-"))

    def one(job):
        chapter, seed = job
        out = tmp / f"{chapter}-{seed}.json"
        cmd = [
            sys.executable,
            __file__,
            "--one",
            chapter,
            str(seed),
            str(out),
            "--profile",
            profile,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            record = {"seconds": None, "claims": [], "errors": [proc.stderr[-2000:]]}
        else:
            record = json.loads(out.read_text())
        bad = sum(c["verdict"] == "fails" for c in record["claims"])
        print(f"{chapter:15s} seed {seed}: {record['seconds']} s, "
              f"{len(record['claims'])} claims, {bad} failed, {len(record['errors'])} errors, "
              f"{len(record.get('stderr', []))} stderr outputs", flush=True)  # fmt: skip
        return chapter, seed, record

    jobs_list = [(c, s) for c in chapters for s in seeds]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for chapter, seed, record in pool.map(one, jobs_list):
            results.setdefault(chapter, {})[str(seed)] = record
    return results


def merge(results: dict, profile: str, jobs: int) -> dict:
    """Merge new runs into the committed JSON (quick runs by seed, full runs apart)."""
    doc = json.loads(JSON.read_text()) if JSON.exists() else {"chapters": {}}
    key = "seeds" if profile == "quick" else "full"
    for chapter, runs in results.items():
        entry = doc["chapters"].setdefault(chapter, {"seeds": {}, "full": {}})
        entry.setdefault(key, {}).update(runs)
        entry[key] = dict(sorted(entry[key].items()))
    doc["chapters"] = {c: doc["chapters"][c] for c in CHAPTERS if c in doc["chapters"]}
    doc["machine"] = f"{platform.processor() or platform.machine()}, {_cpu_name()}"
    doc["date"] = date.today().isoformat()
    doc["jobs"] = jobs
    import torch

    doc["torch"] = torch.__version__
    return doc


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.platform()


def _accelerator_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return _cpu_name()


def _key(record: dict) -> str:
    return record["statement"]


def _numbers(runs: dict) -> dict[str, list]:
    """Statement -> the claim records of each run, in the order the chapter states them."""
    table: dict[str, list] = {}
    for seed, run in runs.items():
        seen: dict[str, int] = {}
        for c in run["claims"]:
            name = _key(c)
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} [{seen[name]}]"
            table.setdefault(name, []).append((int(seed), c))
    return table


def _fmt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "✓" if x else "✗"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    return f"{x:.3g}"


def _spreads(margins: list[float]) -> float | None:
    """The mean margin over its standard deviation across seeds (``inf`` when every seed
    gave the same margin; ``None`` under two seeds)."""
    if len(margins) < 2 or not all(math.isfinite(m) for m in margins):
        return None
    sd = statistics.stdev(margins)
    mean = statistics.fmean(margins)
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return math.inf if mean >= 0 else -math.inf
    return mean / sd


def _seed_span(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _verification(entry: dict, statement: str) -> str:
    """Where the full profile verified a claim: device, data and seeds of its runs."""
    runs = entry.get("full", {})
    records = [(int(seed), run, c) for seed, run in runs.items() for c in run["claims"]
               if c["statement"] == statement]  # fmt: skip
    if not records:
        return "not verified"
    verdicts = {c["verdict"] for _, _, c in records}
    verdict = "verified" if verdicts == {"holds"} else ("fails" if "fails" in verdicts else
                                                       "unverified")  # fmt: skip
    where = sorted({f"{r.get('device', '?')}, {r.get('data', '?')}" for _, r, _ in records})
    return f"{verdict} ({'; '.join(where)}; seeds {_seed_span([s for s, _, _ in records])})"


def summary(doc: dict) -> dict:
    """Per claim: kind, threshold, values over the seeds, how many held, the smallest
    margin and the margin in spreads, and the full profile's verification."""
    rows = []
    for chapter, entry in doc["chapters"].items():
        for statement, records in _numbers(entry.get("seeds", {})).items():
            first = records[0][1]
            by_seed = {seed: c for seed, c in records}
            margins = [c["margin"] for c in by_seed.values() if c["margin"] is not None]
            numbers = [c["value"] for c in by_seed.values()
                       if isinstance(c["value"], (int, float)) and not isinstance(c["value"], bool)]  # fmt: skip
            rows.append({
                "chapter": chapter,
                "statement": statement,
                "kind": records[-1][1].get("kind", "measured"),  # the latest run's
                "expected": "true" if first["op"] is None else f"{first['op']} {_fmt(first['threshold'])}",
                "seeds": sorted(by_seed),
                "values": {s: c["value"] for s, c in sorted(by_seed.items())},
                "range": (min(numbers), statistics.fmean(numbers), max(numbers)) if numbers else None,
                "held": sum(c["verdict"] == "holds" for c in by_seed.values()),
                "runs": len(by_seed),
                "margin": min(margins) if margins else None,
                "spreads": _spreads(margins),
                "full": _verification(entry, statement.split(" [")[0]),
            })  # fmt: skip
    return {"rows": rows}


def _fmt_spreads(r: dict) -> str:
    if r["kind"] == "identity":
        return "identity"
    if r["spreads"] is None:
        return f"{r['held']}/{r['runs']} hold" if r["margin"] is None else "–"
    if math.isinf(r["spreads"]):
        return "same on every seed"
    return f"{r['spreads']:.1f}"


def report(doc: dict) -> str:
    rows = summary(doc)["rows"]
    measured = [r for r in rows if r["kind"] == "measured"]
    identities = [r for r in rows if r["kind"] == "identity"]
    held = [r for r in measured if r["held"] == r["runs"] >= 2]
    spread_ok = [r for r in held if r["spreads"] is not None and r["spreads"] >= 3]
    yes_no = [r for r in held if r["margin"] is None]
    constant = [r for r in held if r["spreads"] is not None and math.isinf(r["spreads"])]
    weak = [r for r in measured if r["spreads"] is not None and r["spreads"] < 3]
    by_seeds: dict[str, list[str]] = {}
    for chapter, entry in doc["chapters"].items():
        span = _seed_span([int(s) for s in entry.get("seeds", {})])
        by_seeds.setdefault(span, []).append(chapter)
    sweep = "; ".join(f"seeds {span}: {', '.join(chs)}" for span, chs in by_seeds.items())
    times = {
        c: [r["seconds"] for r in e["seeds"].values() if r["seconds"] is not None]
        for c, e in doc["chapters"].items()
    }
    lines = [
        "# Claims",
        "",
        f"**{len(held)} of {len(measured)} measured claims hold on every seed** of the sweep "
        f"in the quick profile ({sweep}). Of these, {len(spread_ok) - len(constant)} have a "
        f"margin of at least 3 spreads, {len(yes_no)} are yes/no facts (no margin) and "
        f"{len(constant)} measured the same on every seed; **{len(weak)} have a margin under "
        f"3 spreads**. {sum(r['held'] == r['runs'] for r in identities)} of "
        f"{len(identities)} identities hold (exact mathematics or deterministic arithmetic, "
        "not counted as measurements). "
        f"Machine: {doc.get('machine', '?')}; torch {doc.get('torch', '?')}; {doc.get('date', '?')}.",
        "",
        "| chapter | claim | kind | expected | values (min · mean · max) | held | margin in spreads | smallest margin | full profile |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        values = "–" if r["range"] is None else " · ".join(_fmt(v) for v in r["range"])
        statement = r["statement"].replace("|", "\\|")
        lines.append(
            f"| {r['chapter']} | {statement} | {r['kind']} | "
            f"{r['expected'].replace('|', chr(92) + '|')} | {values} | {r['held']}/{r['runs']} | "
            f"{_fmt_spreads(r)} | {_fmt(r['margin'])} | {r['full']} |"
        )
    lines += [
        "",
        "Chapter wall times in the sweep (seconds, min-max over the seeds; other runs may "
        "have shared the machine, so they bound a chapter's own time from above): "
        + ", ".join(
            f"{c} {min(t):.0f}-{max(t):.0f}" for c, t in times.items() if t
        ) + ".",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="*", default=CHAPTERS, choices=CHAPTERS)
    parser.add_argument("--seeds", nargs="*", type=int, default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--report", action="store_true", help="only rewrite claims.md")
    parser.add_argument(
        "--collect", nargs="+", metavar="DIR", type=Path,
        help="merge the finished runs of interrupted sweeps (their selfsup-claims-* folders)",
    )  # fmt: skip
    parser.add_argument(
        "--one", nargs=3, metavar=("CHAPTER", "SEED", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        chapter, seed, out = args.one
        run_one(chapter, int(seed), args.profile, Path(out))
        return
    if args.collect:
        results: dict = {}
        for folder in args.collect:
            for path in sorted(folder.glob("*-*.json")):
                chapter, seed = path.stem.rsplit("-", 1)
                results.setdefault(chapter, {})[seed] = json.loads(path.read_text())
        doc = merge(results, args.profile, args.jobs)
        JSON.write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n")
    elif not args.report:
        results = sweep(args.chapters, args.seeds, args.profile, args.jobs)
        doc = merge(results, args.profile, args.jobs)
        JSON.write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n")
    doc = json.loads(JSON.read_text())
    MD.write_text(report(doc))
    rows = summary(doc)["rows"]
    failing = [r for r in rows if r["held"] < r["runs"]]
    for r in failing:
        print(f"FAILS on some seed: {r['chapter']}: {r['statement']} {r['values']}")
    print(f"wrote {JSON.relative_to(ROOT)} and {MD.relative_to(ROOT)}: {len(rows)} claims, "
          f"{len(failing)} failing on some seed")  # fmt: skip


if __name__ == "__main__":
    main()

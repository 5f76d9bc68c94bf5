"""Run the benchmarks, print their results as a Markdown table, and write bench/RESULTS.md.

    .venv/bin/python bench/run.py            # all of them, at full size (make bench)
    .venv/bin/python bench/run.py 1 3        # some, by number or module name (reply_path)
    .venv/bin/python bench/run.py --quick    # shrunk sizes, a smoke test; prints only

Every figure is a ratio to a baseline measured in the same run, so it holds on a noisy machine.
A benchmark is a module of this folder with NUMBER, NAME and `run(quick) -> list[Result]`;
add a new one to BENCHMARKS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.common import Result

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = (
    "bench.reply_path",
    "bench.dispatch_cost",
    "bench.schedule_scale",
    "bench.recap_history",
    "bench.memory_start",
    "bench.instances",
)
RESULTS = ROOT / "bench" / "RESULTS.md"


def chosen(names: list[str]) -> list[str]:
    """The modules named (by number or module name), in their order; all if none is."""
    if not names:
        return list(BENCHMARKS)
    picked = []
    for name in names:
        matches = [
            module
            for number, module in enumerate(BENCHMARKS, start=1)
            if name in (str(number), module, module.removeprefix("bench."))
        ]
        if not matches:
            raise SystemExit(f"no benchmark {name!r}; there are: {', '.join(BENCHMARKS)}")
        picked += matches
    return picked


def report(results: list[Result], seconds: float, quick: bool, failed: list[str]) -> str:
    from bench.common import describe_machine, markdown_table

    met = [r for r in results if r.met]
    missed = [r for r in results if r.met is False]
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/run.py`); do not edit by hand. Each figure is a ratio "
        "to a baseline measured in the same run (or of a large case to a small one), so it "
        "holds on a noisy machine. How each is measured: the docstring of its module in "
        "`bench/`.",
        "",
    ]
    if quick:
        lines += [
            "**Quick mode: sizes shrunk for a smoke test; goals hold at full size only.**",
            "",
        ]
    lines += [f"- **{name}**: {value}" for name, value in describe_machine()]
    lines += [
        f"- **Run time**: {seconds / 60:.1f} min",
        "",
        markdown_table(results),
        "",
        f"Goals: {len(met)} met, {len(missed)} missed.",
    ]
    if failed:
        lines += ["", "Benchmarks that failed to run: " + ", ".join(failed) + "."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmark numbers or module names")
    parser.add_argument("--quick", action="store_true", help="shrunk sizes, a smoke test")
    parser.add_argument(
        "--output", type=Path, help=f"where to write the report (default: {RESULTS} unless quick)"
    )
    args = parser.parse_args()
    # `python bench/run.py` puts bench/, not the repository, on the path.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench.common import print_results

    started = time.perf_counter()
    results: list[Result] = []
    failed: list[str] = []
    for name in chosen(args.names):
        module = importlib.import_module(name)
        print(f"== {module.NUMBER}. {module.NAME} ({name})", flush=True)
        began = time.perf_counter()
        try:
            found: list[Result] = module.run(quick=args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            reason = f"{type(exc).__name__}: {str(exc)[:300]}"
            print(f"   failed: {reason}", flush=True)
            failed.append(f"{module.NUMBER}. {module.NAME} ({reason})")
            continue
        print_results(found)
        print(f"   ({time.perf_counter() - began:.0f} s)", flush=True)
        results += found
    text = report(results, time.perf_counter() - started, args.quick, failed)
    print()
    print(text)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        print(f"written to {output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

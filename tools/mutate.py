"""Mutation testing of the modules that carry the relay's guarantees (`make mutate`).

    python tools/mutate.py                 every module in MODULES, then the table
    python tools/mutate.py errors sweep    only these modules (names as in the table)
    python tools/mutate.py --report        the table of the last run, nothing run

mutmut 3 (pinned in requirements-dev.txt) writes every mutant of a function into a copy of the code and
picks one per test process, and runs only the tests that called that function in a first, clean run: the
unit tests and the integration tests that take seconds (pyproject.toml, [tool.mutmut]). It imports the code
from ./src, ./ or ./source only, and names mutants after their path; the layer lives in layers/relay. So
the run happens in a staging copy, .mutate/, where the package is src/aitask_relay; the tests and the
files they read are copied beside it. Later runs reuse .mutate/mutants/ and test again only the functions
that changed (mutmut keeps a hash of each).

mutmut mutates code inside functions only: the error table and other module-level constants are not
mutated. Tests of the table entries that matter (tests/unit/test_errors.py) stand in for that.

A module passes when at least TARGET of its mutants are killed and every survivor is listed in
tests/mutation_equivalents.toml with the reason it behaves like the original. A survivor is matched by
its function and its changed lines, not by mutmut's number, which moves when the function is edited.
Exit status 1 when a module is below TARGET or a survivor is not explained; the survivors and their diffs
are written to .mutate/survivors.md.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".mutate"
PACKAGE = "aitask_relay"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
TARGET = 0.85

# The modules that carry a guarantee, and the guarantee (table name -> path under the package).
MODULES = {
    "normalize": "normalize.py",  # one stable TaskResult from whatever GetAITask answers
    "errors": "errors.py",  # which failure is retried, which is permanent, and what it is called
    "store": "destinations/store.py",  # create-only: a template is written once, never overwritten
    "file": "destinations/file.py",  # create-only by os.link on a directory
    "s3": "destinations/s3.py",  # create-only by If-None-Match, versioned buckets refused
    "oss": "destinations/oss.py",  # create-only by x-oss-forbid-overwrite, versioned buckets refused
    "queue": "destinations/queue.py",  # announce once; a refused body goes as a claim check
    "message": "destinations/message.py",  # the message format and the claim check's size
    "destinations": "destinations/__init__.py",  # URI parsing and redaction of passwords
    "ledger": "ledger.py",  # published once across deliveries and retries
    "consumer": "triggers/sqs.py",  # the queue consumer's settle policy
    "tracking": "tracking.py",  # the tracking message and its growing delays
    "sweep": "sweep.py",  # the sweep window (UpdateTime), pages and completeness
    "watermark": "watermark.py",  # where the next sweep starts
    "config": "config.py",  # one typed configuration; bad settings refused by name
}

# Exit codes of a mutant's test run, as mutmut records them (mutmut.stats.status_by_exit_code).
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "killed", None: "not checked"}


def stage() -> None:
    """Bring .mutate/ level with the working copy: tracked and new files, and the package under src/."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    wanted: dict[Path, Path] = {}
    prefix = f"layers/relay/{PACKAGE}/"
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working copy, not yet in the index
        wanted[STAGE / name] = source
        if name.startswith(prefix):
            wanted[STAGE / "src" / PACKAGE / name.removeprefix(prefix)] = source
    for target, source in wanted.items():
        # Copy only what changed, keeping times: mutmut re-mutates a file whose copy is newer.
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for path in sorted(STAGE.rglob("*"), reverse=True):
        relative = path.relative_to(STAGE)
        if relative.parts[0] in ("mutants", "survivors.md", "run.log") or "__pycache__" in relative.parts:
            continue
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def run(modules: list[str]) -> int:
    """mutmut run over the modules' mutants; its progress goes to .mutate/run.log."""
    names = [f"{PACKAGE}.{MODULES[m].removesuffix('.py').replace('/', '.')}.*" for m in modules]
    log = STAGE / "run.log"
    print(f"mutmut run: {', '.join(modules)} (progress in {log.relative_to(ROOT)})", flush=True)
    with log.open("w") as out:
        return subprocess.run([sys.executable, "-m", "mutmut", "run", *names], cwd=STAGE, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode


def results(modules: list[str]) -> dict[str, dict[str, str]]:
    """Each module's mutants and their status, from mutmut's records in .mutate/mutants/."""
    found: dict[str, dict[str, str]] = {}
    for module in modules:
        meta = STAGE / "mutants" / "src" / PACKAGE / (MODULES[module] + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        found[module] = {name: STATUS.get(code, "suspicious") for name, code in codes.items()}
    return found


def diffs(names: list[str]) -> dict[str, str]:
    """The unified diff of each mutant, read from mutmut's copy (mutmut reads its config from the cwd)."""
    if not names:
        return {}
    os.chdir(STAGE)
    sys.path.insert(0, str(STAGE))
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # imported here: it needs the cwd first

    return {name: get_diff_for_mutant(name) for name in names}


def function_of(name: str) -> str:
    """aitask_relay.errors.x_classify__mutmut_3 -> aitask_relay.errors.classify (methods keep their class)."""
    module, _, mangled = name.rpartition(".")
    function = mangled.rsplit("__mutmut_", 1)[0].removeprefix("x_").removeprefix("xǁ").replace("ǁ", ".")
    return f"{module}.{function}"


def change_of(diff: str) -> str:
    """The lines a mutant changes, without the diff's headers and context, trimmed: its stable identity."""
    lines = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(line[0] + line[1:].strip() for line in lines)


def equivalents() -> list[dict[str, str]]:
    if not EQUIVALENTS.exists():
        return []
    entries = tomllib.loads(EQUIVALENTS.read_text())["mutant"]
    for entry in entries:
        missing = {"function", "change", "reason"} - entry.keys()
        if missing or not entry["reason"].strip():
            raise SystemExit(f"{EQUIVALENTS.relative_to(ROOT)}: an entry lacks {sorted(missing) or ['a reason']}: "
                             f"{entry.get('function')!r}")
    return entries


def report(modules: list[str]) -> int:
    found = results(modules)
    survivors = [name for statuses in found.values() for name, status in statuses.items()
                 if status not in ("killed",)]
    texts = diffs(survivors)
    explained = {(e["function"], e["change"].strip()) for e in equivalents()}
    unexplained: list[str] = []
    rows, failing = [], []
    for module in modules:
        counts = Counter(found[module].values())
        total = sum(counts.values())
        left = [n for n in found[module] if found[module][n] != "killed"]
        known = [n for n in left if (function_of(n), change_of(texts[n])) in explained]
        unexplained += [n for n in left if n not in known]
        score = counts["killed"] / total if total else 0.0
        ok = total > 0 and score >= TARGET and len(known) == len(left)
        failing += [] if ok else [module]
        rows.append(f"| {module} | {MODULES[module]} | {total} | {counts['killed']} | {len(left)} | {len(known)} | "
                    f"{len(left) - len(known)} | {score:.1%} | {'ok' if ok else 'FAIL'} |")
    print("| module | file | mutants | killed | survived | equivalent | unexplained | killed % | |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    out = STAGE / "survivors.md"
    out.write_text("".join(f"## {n} ({found_status(found, n)})\nfunction = {function_of(n)!r}\n"
                           f"```diff\n{texts[n]}\n```\n\n" for n in unexplained))
    print(f"\n{len(unexplained)} unexplained survivors (diffs in {out.relative_to(ROOT)}); target {TARGET:.0%} "
          f"killed per module; {'all pass' if not failing else 'failing: ' + ', '.join(failing)}")
    return 1 if failing else 0


def found_status(found: dict[str, dict[str, str]], name: str) -> str:
    return next(statuses[name] for statuses in found.values() if name in statuses)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=", ".join(MODULES))
    parser.add_argument("--report", action="store_true", help="print the table of the last run, run nothing")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - MODULES.keys())
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    started = time.monotonic()
    if not args.report:
        stage()
        code = run(modules)
        if code != 0:
            print((STAGE / "run.log").read_text()[-4000:])
            print(f"mutmut run failed (exit {code}); the log is .mutate/run.log")
            return code
        print(f"mutmut run took {time.monotonic() - started:.0f} s")
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())

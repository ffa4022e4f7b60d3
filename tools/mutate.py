"""Mutation testing of the modules that carry the relay's guarantees (`make mutate`).

    python tools/mutate.py                 every module in MODULES, then the table
    python tools/mutate.py errors sweep    only these modules (names as in the table)
    python tools/mutate.py --report        the table of the last run, nothing run

mutmut 3 (pinned in requirements-dev.txt) writes every mutant of a function into a copy of the code, picks
one per forked test process, and runs only the tests that called that function in a first, clean run,
stopping at the first failure. It imports the code from ./src, ./ or ./source only, and names mutants
after their path; the layer lives in layers/relay. So each run happens in a staging copy of the working
tree per module, .mutate/<module>/, where the package is src/aitask_relay (one module mutated in each, so
that any subset can run on its own). Later runs reuse .mutate/<module>/mutants/:
they test again the mutants of functions that changed (mutmut keeps a hash of each) and every mutant that
was not killed; --fresh tests all of them again.

Tiers of tests (TIERS), because a mutant pays for every test that reaches its function:
- unit: the pure modules, against tests/unit (each mutant's run takes about a second);
- servers: the stores, the ledger and the queues, against tests/unit and the integration tests that drive
  them over moto's server, Redis and RabbitMQ;
- flows: the queue consumer and the sweep's watermark, against tests/unit and the consumer's and the
  sweeper's integration tests (their logic is proved there, with real queues and stores).
The other handler-level integration tests, the soak, the demo and the fuzz targets are left out: they
reach nearly every function and would make every mutant pay for them.

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
import json
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

# The tests each tier's mutants run (the first clean run picks, per function, those that reach it).
TIERS = {
    "unit": ["tests/unit"],
    "servers": [
        "tests/unit",
        "tests/integration/test_destinations.py",
        "tests/integration/test_announce_once.py",
        "tests/integration/test_queue_size.py",
        "tests/integration/test_several_destinations.py",
    ],
    "flows": [
        "tests/unit",
        "tests/integration/test_queue_consumer.py",
        "tests/integration/test_queue_consumer_settling.py",
        "tests/integration/test_sweeper.py",
        "tests/integration/test_sweep_window.py",
    ],
}

# The modules that carry a guarantee: table name -> (path under the package, tier). What each guarantees:
MODULES = {
    "normalize": ("core/normalize.py", "unit"),  # one stable TaskResult from whatever GetAITask answers
    "errors": ("core/errors.py", "unit"),  # which failure is retried, which is permanent, and what it is called
    "outcome": ("core/outcome.py", "unit"),  # done / pending / retry / permanent: what every trigger does with a result
    "store": ("adapters/destinations/store.py", "unit"),  # create-only: a template is written once, never overwritten
    "file": ("adapters/destinations/file.py", "unit"),  # create-only by os.link on a directory
    "s3": ("adapters/destinations/s3.py", "servers"),  # create-only by If-None-Match; versioned buckets refused
    "oss": ("adapters/destinations/oss.py", "servers"),  # create-only by x-oss-forbid-overwrite; versioning refused
    "queue": ("adapters/destinations/queue.py", "servers"),  # announce once; a refused body goes as a claim check
    "message": ("adapters/destinations/message.py", "unit"),  # the message format and the claim check's size
    "destinations": ("adapters/destinations/uri.py", "unit"),  # URI parsing and the redaction of passwords
    "ledger": ("adapters/ledger.py", "servers"),  # published once across deliveries and retries
    "consumer": ("usecases/settle.py", "flows"),  # the queue consumer's settle policy
    "tracking": ("core/tracking.py", "unit"),  # the tracking message and its growing delays
    "sweep": ("usecases/sweep.py", "unit"),  # the sweep window (UpdateTime), pages and completeness
    "watermark": ("adapters/watermark.py", "flows"),  # where the next sweep starts
    "config": ("config.py", "unit"),  # one typed configuration; bad settings refused by name
}

# Files the tests read beside the code (mutmut copies tests/ and pyproject.toml itself).
ALSO_COPY = ["emulator", "events", "tools", "layers", "functions", "aliyun", "docs", "bench", "scripts",
             "template.yaml", "README.md", "Makefile"]

# Exit codes of a mutant's test run, as mutmut records them (mutmut.stats.status_by_exit_code).
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "killed", None: "not checked"}
# A mutant whose tests run past their time limit (a loop that never ends) is detected: the suite's own
# pytest-timeout (pyproject.toml) fails the same tests on such a bug. It counts as killed.
DETECTED = ("killed", "timeout")


def mutmut_config(module: str) -> str:
    """The [tool.mutmut] section of a module's staging copy."""
    path, tier = MODULES[module]
    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["src"]',
        f'only_mutate = ["src/{PACKAGE}/{path}"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(TIERS[tier])}",
        f"also_copy = {json.dumps(ALSO_COPY)}",
        # A mutant that loops is stopped at 5x its tests' clean time (plus 1 s), not mutmut's 15x.
        "timeout_multiplier = 5.0", "",
    ])


def stage(module: str) -> Path:
    """Bring .mutate/<module>/ level with the working copy: tracked and new files, the package under src/."""
    root = STAGE / module
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    wanted: dict[Path, bytes] = {}
    prefix = f"layers/relay/{PACKAGE}/"
    for name in filter(None, listed):
        source = ROOT / name
        if not source.is_file() or name.startswith(".mutate/"):
            continue  # deleted in the working copy, not yet in the index
        content = source.read_bytes()
        if name == "pyproject.toml":
            content += mutmut_config(module).encode()
        wanted[root / name] = content
        if name.startswith(prefix):
            wanted[root / "src" / PACKAGE / name.removeprefix(prefix)] = content
    for target, content in wanted.items():
        # Write only what changed: mutmut mutates again a file whose copy is newer than its mutants.
        if not target.exists() or target.read_bytes() != content:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    for path in sorted(root.rglob("*"), reverse=True):
        relative = path.relative_to(root)
        if relative.parts[0] in ("mutants", "run.log") or "__pycache__" in relative.parts:
            continue
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return root


def forget_stale_copies(root: Path) -> None:
    """mutmut copies the tests and ALSO_COPY into mutants/ by adding and overwriting, never removing, and adds
    source files only when missing: a test or module deleted (or renamed) in the working tree would live on
    there and go on killing mutants. Removed here, mutmut copies them again as they are now."""
    mutants = root / "mutants"
    for name in ("tests", *ALSO_COPY):
        path = mutants / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for copy in (mutants / "src").rglob("*.py") if (mutants / "src").is_dir() else ():
        if not (root / copy.relative_to(mutants)).exists():
            for leftover in (copy, copy.with_name(copy.name + ".meta"), copy.with_name(copy.name + ".spans")):
                leftover.unlink(missing_ok=True)


def meta_of(module: str) -> Path:
    return STAGE / module / "mutants" / "src" / PACKAGE / (MODULES[module][0] + ".meta")


def run(module: str, *, fresh: bool) -> int:
    """mutmut run in the module's copy; its progress goes to .mutate/<module>/run.log.

    Incremental: mutmut itself tests again the mutants of functions that changed; a mutant that survived
    (or had no test, or timed out) is tested again here, since new tests may kill it. A killed mutant of an
    unchanged function stays killed unless ``fresh``. No mutant names are passed: mutmut re-runs every
    mutant it is given by name, whatever its record."""
    root = stage(module)
    forget_stale_copies(root)
    meta = meta_of(module)
    if meta.exists():
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        data["exit_code_by_key"] = {k: None if fresh or STATUS.get(v) not in DETECTED else v for k, v in codes.items()}
        meta.write_text(json.dumps(data))
    log = root / "run.log"
    started = time.monotonic()
    print(f"mutmut run: {module} ({MODULES[module][1]} tests; progress in {log.relative_to(ROOT)})", end="", flush=True)
    with log.open("w") as out:
        code = subprocess.run([sys.executable, "-m", "mutmut", "run"], cwd=root, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode
    print(f": {time.monotonic() - started:.0f} s", flush=True)
    return code


def results(modules: list[str]) -> dict[str, dict[str, str]]:
    """Each module's mutants and their status, from mutmut's records in .mutate/<module>/mutants/."""
    found: dict[str, dict[str, str]] = {}
    for module in modules:
        meta = meta_of(module)
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        found[module] = {name: STATUS.get(code, "suspicious") for name, code in codes.items()}
    return found


def diffs(modules: list[str], found: dict[str, dict[str, str]]) -> dict[str, str]:
    """The unified diff of each surviving mutant, read from mutmut's copy in a child per module (mutmut reads
    its configuration from the working directory)."""
    texts: dict[str, str] = {}
    for module in modules:
        names = [n for n, status in found[module].items() if status not in DETECTED]
        if names:
            script = ("import json, sys\nfrom mutmut.mutation.diff_apply import get_diff_for_mutant\n"
                      "print(json.dumps({n: get_diff_for_mutant(n) for n in json.loads(sys.stdin.read())}))")
            answer = subprocess.run([sys.executable, "-c", script], cwd=STAGE / module, input=json.dumps(names),
                                    capture_output=True, text=True, check=True)
            texts.update(json.loads(answer.stdout))
    return texts


def function_of(name: str) -> str:
    """aitask_relay.core.errors.x_classify__mutmut_3 -> aitask_relay.core.errors.classify (methods keep their class)."""
    module, _, mangled = name.rpartition(".")
    function = mangled.rsplit("__mutmut_", 1)[0].removeprefix("x_").removeprefix("xǁ").replace("ǁ", ".")
    return f"{module}.{function}"


def change_of(diff: str, *, listed: bool = False) -> str:
    """The lines a mutant changes, without the diff's headers and context, trimmed: its stable identity.
    ``listed``: the change as written in the equivalents list, where a whole line may be indented."""
    lines = [line.strip() if listed else line for line in diff.splitlines()]
    lines = [line for line in lines if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return "\n".join(line[0] + line[1:].strip() for line in lines)


def equivalents() -> list[dict[str, str]]:
    if not EQUIVALENTS.exists():
        return []
    where = EQUIVALENTS.relative_to(ROOT)
    document = tomllib.loads(EQUIVALENTS.read_text())
    if set(document) - {"mutant"}:
        raise SystemExit(f"{where}: only [[mutant]] entries belong here, not {sorted(set(document) - {'mutant'})}")
    entries = document.get("mutant", [])
    for entry in entries:
        fields = ("function", "change", "reason")
        if set(entry) != set(fields) or not all(isinstance(entry[f], str) and entry[f].strip() for f in fields):
            raise SystemExit(f"{where}: each entry has exactly {', '.join(fields)}, each a text: {entry!r}")
    return entries


def report(modules: list[str]) -> int:
    found = results(modules)
    texts = diffs(modules, found)
    explained = {(e["function"], change_of(e["change"], listed=True)) for e in equivalents()}
    unexplained: list[str] = []
    rows, failing = [], []
    for module in modules:
        counts = Counter(found[module].values())
        total = sum(counts.values())
        left = [n for n in found[module] if found[module][n] not in DETECTED]
        known = [n for n in left if (function_of(n), change_of(texts[n])) in explained]
        unexplained += [n for n in left if n not in known]
        killed = counts["killed"] + counts["timeout"]
        score = killed / total if total else 0.0
        ok = total > 0 and score >= TARGET and len(known) == len(left)
        failing += [] if ok else [module]
        rows.append(f"| {module} | {MODULES[module][0]} | {total} | {killed} | {len(left)} | {len(known)} | "
                    f"{len(left) - len(known)} | {score:.1%} | {'ok' if ok else 'FAIL'} |")
    print("| module | file | mutants | killed (timeouts too) | survived | equivalent | unexplained | killed % | |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    out = STAGE / "survivors.md"
    STAGE.mkdir(exist_ok=True)
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
    parser.add_argument("--fresh", action="store_true", help="test every mutant again, killed ones too")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - MODULES.keys())
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    started = time.monotonic()
    if not args.report:
        for module in modules:
            code = run(module, fresh=args.fresh)
            if code != 0:
                log = STAGE / module / "run.log"
                lines = log.read_text().replace("\r", "\n").splitlines()
                kept = [line for line in lines if line.strip() and not "\u2800" <= line[0] <= "\u28ff"]
                print("\n".join(kept)[-4000:])  # without the progress spinner's lines
                print(f"mutmut run failed (exit {code}); the log is {log.relative_to(ROOT)}")
                return code
        print(f"mutmut took {time.monotonic() - started:.0f} s")
    return report(modules)


if __name__ == "__main__":
    sys.exit(main())

"""tests/mutation_equivalents.toml lists the surviving mutants that behave like the original (make mutate).
An entry must still describe today's code: its function exists, the lines its mutant changes are still in
that function, and it says why no test can tell the two apart. Otherwise the list would silently excuse a
mutant of code that has since changed."""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

LIST = Path(__file__).resolve().parents[1] / "mutation_equivalents.toml"
DOCUMENT = tomllib.loads(LIST.read_text())
ENTRIES = DOCUMENT.get("mutant", [])


def resolve(qualified: str):
    """aitask_relay.core.errors.classify or aitask_relay.adapters.destinations.store.Store.put -> the function."""
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise LookupError(qualified)


def test_each_listed_mutant_still_matches_the_code_and_says_why():
    # Given the listed survivors (one test for all: an empty list is not a skipped test)
    stale = []
    for entry in ENTRIES:
        assert entry.get("reason", "").strip(), f"{entry['function']}: an equivalent mutant needs a reason"
        removed = [line[1:].strip() for line in entry["change"].strip().splitlines() if line.startswith("-")]
        assert removed, f"{entry['function']}: the change must show the original lines (-) as mutmut's diff does"
        # When each function is looked up in today's code
        source = {line.strip() for line in inspect.getsource(resolve(entry["function"])).splitlines()}
        # Then every line its mutant changes is still there
        stale += [f"{entry['function']}: {line!r}" for line in removed if line not in source]
    assert not stale, f"entries no longer match the code (run make mutate and update them): {stale}"


def test_the_list_holds_only_entries_of_three_texts():
    # Given the list / Then it is [[mutant]] entries only (a misspelt table would be ignored), each with exactly
    # function, change and reason, all texts
    assert set(DOCUMENT) <= {"mutant"}
    fields = {"function", "change", "reason"}
    bad = [e for e in ENTRIES if set(e) != fields or not all(isinstance(v, str) for v in e.values())]
    assert not bad, bad


def test_no_mutant_is_listed_twice():
    keys = [(e["function"], e["change"].strip()) for e in ENTRIES]
    assert len(keys) == len(set(keys))

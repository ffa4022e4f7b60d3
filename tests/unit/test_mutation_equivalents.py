"""tests/mutation_equivalents.toml lists the surviving mutants that behave like the original (make mutate).
An entry must still describe today's code: its function exists, the lines its mutant changes are still in
that function, and it says why no test can tell the two apart. Otherwise the list would silently excuse a
mutant of code that has since changed."""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

LIST = Path(__file__).resolve().parents[1] / "mutation_equivalents.toml"
ENTRIES = tomllib.loads(LIST.read_text()).get("mutant", [])


def resolve(qualified: str):
    """aitask_relay.errors.classify or aitask_relay.destinations.store.Store.put -> the function."""
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


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e['function']}:{i}" for i, e in enumerate(ENTRIES)])
def test_each_listed_mutant_still_matches_the_code_and_says_why(entry):
    # Given a listed survivor
    assert entry.get("reason", "").strip(), "an equivalent mutant needs a reason"
    # When its function is looked up in today's code
    source = {line.strip() for line in inspect.getsource(resolve(entry["function"])).splitlines()}
    # Then every line the mutant changes is still there
    removed = [line[1:].strip() for line in entry["change"].strip().splitlines() if line.startswith("-")]
    assert removed, "the change must show the original lines (-) as mutmut's diff does"
    missing = [line for line in removed if line not in source]
    assert not missing, f"{entry['function']} no longer holds {missing}: run make mutate and update the entry"


def test_no_mutant_is_listed_twice():
    keys = [(e["function"], e["change"].strip()) for e in ENTRIES]
    assert len(keys) == len(set(keys))

"""The tests' own hygiene: no assertion that cannot fail, no swallowed failure (an AST check over tests/**/*.py).

ruff (pyproject.toml, applied to tests/ as to the code) already refuses most of these patterns; this check holds
only what ruff lets through, and ``test_ruff_refuses_the_rest_in_tests`` proves ruff's part:
- ruff: ``assert False``/``assert None`` (B011, PT015), ``assert "text"`` (PLW0129), ``assert (a, b)`` (F631),
  ``x == x`` for a name (PLR0124), a comparison as a statement (B015), ``except Exception: pass`` and bare
  ``except: pass`` (S110), ``pytest.raises(Exception)`` without ``match=`` (B017, PT011, which also wants
  ``match=`` on ValueError/OSError), an assertion in an ``except`` block (PT017), any ``except Exception``
  (BLE001: tests name what they expect);
- this check (rules H1..H5):
  H1 ``assert <constant>``: ``assert True``, ``assert 1`` (ruff flags only falsy constants and strings), and
     ``assert sys.<attribute>`` (always set in a running interpreter, e.g. ``assert sys.prefix``);
  H2 ``assert <call>`` where the call builds an object, which is always truthy: a callee whose name starts
     with a capital letter (a class), or a function of the relay's package annotated to return one of the
     package's classes that cannot be falsy (no ``__bool__``/``__len__``, no str/int/container base), e.g.
     ``assert load_config(env)`` (a RelayConfig). Assert on the object's fields instead;
  H3 a comparison with identical sides anywhere in an assert, calls and attributes included
     (``dedup_id(x) == dedup_id(x)``: ruff's PLR0124 sees only bare names);
  H4 ``except Exception``/``except BaseException``/bare ``except`` whose body is only ``...`` (S110 sees
     ``pass`` only) - or ``pass``, which S110 also refuses;
  H5 ``pytest.raises(Exception)`` / ``pytest.raises(BaseException)`` (also in a tuple, or ``raises`` imported
     from pytest) even with ``match=``, which ruff accepts: name the exact type the code raises;
  H6 a failure swallowed by its own test: ``contextlib.suppress(...)`` around an assert or of AssertionError or
     a broad type, and ``except AssertionError`` whose body does nothing (``pass``, ``...``, ``continue``).
H1 also holds what is true by construction: ``assert -1``, ``assert not None``, a non-empty list, set or
dict display (``assert [x]``), a lambda, and ``len(...) >= 0``. H2 leaves out the standard classes that can
be falsy (Counter, Decimal, Fraction, deque...).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "relay" / "aitask_relay"
BROAD = {"Exception", "BaseException"}
# Bases whose instances can be falsy (empty, zero): a class built on one of them may fail an assert.
FALSY_BASES = {"dict", "list", "set", "frozenset", "str", "bytes", "int", "float", "tuple", "IntEnum", "IntFlag"}
# Standard classes whose instances can be falsy (empty or zero): ``assert Counter(x)`` can fail.
FALSY_CLASSES = {"Counter", "Decimal", "Fraction", "OrderedDict", "ChainMap", "UserDict", "UserList", "UserString",
                 "deque", "defaultdict"}  # fmt: skip
SWALLOWED = {"AssertionError", *BROAD}


@cache
def object_builders() -> frozenset[str]:
    """Functions of the relay's package annotated to return an instance of one of its always-truthy classes."""
    trees = [ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))]
    classes = {node.name: node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}

    def truthy(name: str, seen: frozenset[str] = frozenset()) -> bool:
        node = classes.get(name)
        if node is None or name in seen:
            return False
        if any(isinstance(item, ast.FunctionDef) and item.name in ("__bool__", "__len__") for item in node.body):
            return False
        bases = [base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases]
        return all(b not in FALSY_BASES and (b not in classes or truthy(b, seen | {name})) for b in bases)

    return frozenset(
        node.name
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and isinstance(node.returns, ast.Name)
        and truthy(node.returns.id)
    )


def _name(node: ast.AST) -> str:
    """The last name of a callee: ``f`` for ``f(...)``, ``g`` for ``a.b.g(...)``."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _broad(node: ast.AST | None) -> bool:
    """``Exception`` or ``BaseException`` (or ``builtins.`` either), not e.g. ``pytest.fail.Exception``."""
    if isinstance(node, ast.Attribute):
        return _name(node.value) == "builtins" and node.attr in BROAD
    return isinstance(node, ast.Name) and node.id in BROAD


def _same(left: ast.AST, right: ast.AST) -> bool:
    return ast.dump(left, include_attributes=False) == ast.dump(right, include_attributes=False)


def _true_by_construction(test: ast.AST) -> bool:
    """-1, not None, [x], {x}, {k: v}, a lambda, len(...) >= 0: true whatever the code under test does."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.operand, ast.Constant):
        value = test.operand.value  # -1, not None, +0: a constant expression, computed as Python would
        apply = {ast.Not: lambda v: not v, ast.USub: lambda v: -v, ast.UAdd: lambda v: +v, ast.Invert: lambda v: ~v}
        try:
            return bool(apply[type(test.op)](value))
        except TypeError:  # -"text": not a value at all, so not this rule's business
            return False
    if (isinstance(test, ast.List | ast.Set) and test.elts) or (isinstance(test, ast.Dict) and test.keys):
        return True
    if isinstance(test, ast.Lambda):
        return True
    return (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.GtE)
        and isinstance(test.left, ast.Call) and _name(test.left.func) == "len"
        and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value == 0
    )  # fmt: skip


def _assert_findings(node: ast.Assert) -> list[str]:
    test, found = node.test, []
    if isinstance(test, ast.Constant):
        found.append(f"H1 assert on a constant ({test.value!r}) cannot fail")
    elif _true_by_construction(test):
        found.append(f"H1 assert {ast.unparse(test)} is true by construction")
    elif isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "sys":
        found.append(f"H1 assert sys.{test.attr} cannot fail in a running interpreter")
    elif isinstance(test, ast.Call) and _name(test.func) not in FALSY_CLASSES and (
        _name(test.func)[:1].isupper() or _name(test.func) in object_builders()
    ):
        found.append(f"H2 assert {_name(test.func)}(...) builds an object, which is always true: assert its fields")
    for compare in (n for n in ast.walk(test) if isinstance(n, ast.Compare)):
        operands = [compare.left, *compare.comparators]
        if any(_same(a, b) for a, b in pairwise(operands)):
            found.append(f"H3 compares {ast.unparse(compare.left)} with itself")
    return found


def _handler_findings(node: ast.ExceptHandler) -> list[str]:
    caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
    broad = node.type is None or any(_broad(t) for t in caught)
    only_nothing = all(
        isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in node.body
    )
    if broad and only_nothing:
        what = "bare except" if node.type is None else f"except {ast.unparse(node.type)}"
        return [f"H4 {what} whose body does nothing swallows every failure"]
    does_nothing = all(isinstance(s, ast.Pass | ast.Continue) or (isinstance(s, ast.Expr) and isinstance(
        s.value, ast.Constant)) for s in node.body)  # fmt: skip
    if does_nothing and any(_name(t) == "AssertionError" for t in caught if t is not None):
        return ["H6 except AssertionError whose body does nothing swallows the test's own failure"]
    return []


def _suppress_findings(node: ast.With) -> list[str]:
    found = []
    for item in node.items:
        call = item.context_expr
        if not (isinstance(call, ast.Call) and _name(call.func) == "suppress"):
            continue
        swallowed = sorted({_name(a) for a in call.args if _name(a) in SWALLOWED})
        if swallowed or any(isinstance(n, ast.Assert) for s in node.body for n in ast.walk(s)):
            what = ", ".join(swallowed) or "an assert"
            found.append(f"H6 suppress(...) around {what} swallows the test's own failure")
    return found


def _raises_findings(node: ast.Call) -> list[str]:
    pytest_raises = isinstance(node.func, ast.Attribute) and _name(node.func.value) == "pytest"
    if _name(node.func) != "raises" or not (pytest_raises or isinstance(node.func, ast.Name)):
        return []
    keyword = next((k.value for k in node.keywords if k.arg == "expected_exception"), None)
    expected = node.args[0] if node.args else keyword
    types = expected.elts if isinstance(expected, ast.Tuple) else [expected]
    broad = sorted({_name(t) for t in types if _broad(t)})
    return [f"H5 pytest.raises({name}) passes on any error: name the exact type" for name in broad]


def check_source(text: str, filename: str) -> list[str]:
    """``filename:line: rule`` for every pattern of H1..H5 in one file's source."""
    findings = []
    for node in ast.walk(ast.parse(text, filename)):
        if isinstance(node, ast.Assert):
            found = _assert_findings(node)
        elif isinstance(node, ast.ExceptHandler):
            found = _handler_findings(node)
        elif isinstance(node, ast.Call):
            found = _raises_findings(node)
        elif isinstance(node, ast.With):
            found = _suppress_findings(node)
        else:
            continue
        findings += [f"{filename}:{node.lineno}: {message}" for message in found]
    return findings


def check_tree(root: Path) -> list[str]:
    return [
        finding
        for path in sorted(root.rglob("*.py"))
        for finding in check_source(path.read_text(), str(path.relative_to(root.parent)))
    ]


SAMPLE = """\
import sys

import pytest
from aitask_relay.config import load_config


def test_sample(thing, dedup_id, f):
    assert True
    assert 1
    assert sys.prefix
    assert load_config({})
    assert Thing()
    assert thing and dedup_id("x") == dedup_id("x")
    assert thing.a == thing.a
    try:
        f()
    except Exception:
        ...
    try:
        f()
    except:
        pass
    try:
        f()
    except (ValueError, BaseException):
        pass
    with pytest.raises(Exception, match="anything"):
        f()
    with pytest.raises((KeyError, BaseException)):
        f()
    with pytest.raises(expected_exception=Exception):
        f()
    # what the check must let through: assertions that can fail, and handlers that do something
    assert load_config({}).ledger is None
    assert thing(1) == thing(2) and thing == 1
    assert f()
    try:
        f()
    except Exception as exc:
        thing(exc)
    with pytest.raises(ValueError, match="x"):
        f()
    with pytest.raises(pytest.fail.Exception, match="x"):
        f()
"""


def test_no_two_test_modules_share_a_file_name():
    # Given the test folders, which have no __init__.py (pytest imports each module by its file name)
    # When their test modules are listed / Then no name is in two folders: pytest would refuse to collect the second
    # ("import file mismatch") and the whole run would stop before a test ran
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_the_tests_hold_no_assertion_that_cannot_fail_and_swallow_no_failure():
    # Given every Python file under tests/ / When checked / Then none holds any of H1..H5
    findings = check_tree(ROOT / "tests")
    assert findings == [], "\n".join(findings)


def test_the_check_finds_each_pattern_with_its_file_and_line(tmp_path):
    # Given a file with each pattern the check holds, and assertions and handlers it must let through
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    # When the tree is checked
    findings = check_tree(tmp_path)
    # Then each pattern is reported with the file and its line, and nothing else is
    where = f"{tmp_path.name}/test_sample.py"
    assert [f.split(": ", 1)[0] for f in findings] == [f"{where}:{line}" for line in
                                                       (8, 9, 10, 11, 12, 13, 14, 17, 21, 25, 27, 29, 31)]  # fmt: skip
    assert [f.split(": ", 1)[1][:2] for f in findings] == ["H1"] * 3 + ["H2"] * 2 + ["H3"] * 2 + ["H4"] * 3 + ["H5"] * 3
    assert "load_config(...) builds an object" in findings[3] and "dedup_id('x') with itself" in findings[5]


SAMPLE_MORE = """\
import contextlib
from collections import Counter
from contextlib import suppress

from pytest import raises


def test_more(items, f):
    assert -1
    assert not None
    assert [items]
    assert lambda: items
    assert len(items) >= 0
    with contextlib.suppress(Exception):
        f()
    with suppress(KeyError):
        assert items == [1]
    try:
        assert items[0] == 3
    except AssertionError:
        pass
    with raises(Exception, match="x"):
        f()
    # let through: assertions that can fail, a suppress with no assert of a narrow type
    assert Counter(items)
    assert not items
    assert len(items) >= 1
    assert [] == items
    with suppress(KeyError):
        f()
"""


def test_the_check_finds_what_is_true_by_construction_and_failures_swallowed_by_the_test(tmp_path):
    # Given a file with more ways to write a test that cannot fail, and lines that can fail
    (tmp_path / "test_more.py").write_text(SAMPLE_MORE)
    # When the tree is checked
    findings = check_tree(tmp_path)
    # Then each is reported on its line, with its rule, and nothing else is
    lines = [(int(f.split(":")[1]), f.split(": ", 1)[1][:2]) for f in findings]
    assert lines == [(9, "H1"), (10, "H1"), (11, "H1"), (12, "H1"), (13, "H1"), (14, "H6"), (16, "H6"), (20, "H6"),
                     (22, "H5")], findings  # fmt: skip


def test_the_relays_object_builders_are_known():
    # Given the package's functions annotated to return its classes / Then load_config and normalize are among
    # them, and a function that returns a plain value is not
    assert {"load_config", "normalize", "build_destination", "parse_destination"} <= object_builders()
    assert "dedup_id" not in object_builders() and "check_answer" not in object_builders()


def test_ruff_refuses_the_rest_in_tests():
    # Given the patterns left to ruff, in a file ruff takes for one under tests/ (so tests/'s per-file settings
    # apply)
    sample = (
        "import pytest\n\n\ndef test_sample(f, x):\n"
        "    assert False\n"  # B011, PT015
        '    assert "text"\n'  # PLW0129
        "    assert (x, 1)\n"  # F631
        "    assert x == x\n"  # PLR0124
        "    try:\n        f()\n    except Exception:\n        pass\n"  # S110
        "    with pytest.raises(Exception):\n        f()\n"  # B017, PT011
        "    with pytest.raises(ValueError):\n        f()\n"  # PT011
        "    try:\n        f()\n    except KeyError as exc:\n        assert exc.args\n"  # PT017
        "    try:\n        f()\n    except Exception as exc:\n        f(exc)\n"  # BLE001
        "    x == 2\n"  # B015
    )
    # When ruff checks it with the project's configuration
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run(
        [str(ruff), "check", "--no-cache", "--output-format", "concise", "--stdin-filename",
         str(ROOT / "tests" / "unit" / "test_ruff_sample.py"), "-"],
        input=sample, capture_output=True, text=True, cwd=ROOT, check=False, timeout=60,
    )  # fmt: skip
    # Then it refuses each one
    codes = set(re.findall(r":\d+:\d+: ([A-Z]+[0-9]+) ", done.stdout))
    expected = {"B011", "PT015", "PLW0129", "F631", "PLR0124", "S110", "B017", "PT011", "PT017", "BLE001", "B015"}
    assert expected <= codes, done.stdout + done.stderr

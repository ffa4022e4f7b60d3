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
  H5 ``pytest.raises(Exception)`` / ``pytest.raises(BaseException)`` (also in a tuple) even with ``match=``,
     which ruff accepts: name the exact type the code raises.
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


def _assert_findings(node: ast.Assert) -> list[str]:
    test, found = node.test, []
    if isinstance(test, ast.Constant):
        found.append(f"H1 assert on a constant ({test.value!r}) cannot fail")
    elif isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name) and test.value.id == "sys":
        found.append(f"H1 assert sys.{test.attr} cannot fail in a running interpreter")
    elif isinstance(test, ast.Call) and (_name(test.func)[:1].isupper() or _name(test.func) in object_builders()):
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
    return []


def _raises_findings(node: ast.Call) -> list[str]:
    if not (isinstance(node.func, ast.Attribute) and node.func.attr == "raises" and _name(node.func.value) == "pytest"):
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

"""The built artifact: `sam build` (no Docker), then each built handler, with only its built layer and the
standard library on sys.path (python -S, as in Lambda), replays its events/ samples against the emulator. The
replay itself needs the development kit (devkit/, standard library only, no relay code): it is given on
PYTHONPATH, since -S leaves out the venv's editable install of it.

`sam local` needs Docker, which these machines do not have, so this is how the package that gets deployed
is checked. The template targets arm64; the layer holds compiled wheels (cryptography, aiohttp) that only
load on their own architecture, so the test builds the same template for this machine's architecture.
`make build` builds the arm64 artifact itself.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
from ci_policy import require

from relay_devkit import ROOT
from relay_devkit.events import EVENTS
from relay_devkit.runner import built_resource, fc_functions_json, lambda_timeouts_json, replay_outputs

pytestmark = [pytest.mark.build, pytest.mark.timeout(900)]

SAM = ROOT / ".venv-tools" / "sam" / "bin" / "sam"
WHEELHOUSE = ROOT / ".wheelhouse"
DEVKIT_ONLY = {"PYTHONPATH": str(ROOT / "devkit")}  # relay_devkit.replay's imports; nothing of the relay is there
# `aitask-relay replay --built` runs the same replay, but the command line needs typer and rich, which -S leaves out
REPLAY = ["-S", "-m", "relay_devkit.replay"]
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))


def python312() -> str:
    return subprocess.run(
        [str(ROOT / "scripts" / "find-python312.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    # `make test` installs both before it runs the tests: an error on CI, a skip elsewhere
    require("the SAM CLI", str(SAM), SAM.exists(), "`make test` installs it")
    require("the wheelhouse", str(WHEELHOUSE), (WHEELHOUSE / ".stamp").exists(), "`make test` fetches it")
    work = tmp_path_factory.mktemp("sam")
    template = (ROOT / "template.yaml").read_text().replace("arm64", HOST_ARCH)
    (work / "template.yaml").write_text(template)
    py = python312()
    env = dict(os.environ, PATH=f"{os.path.dirname(py)}{os.pathsep}{os.environ['PATH']}", SAM_CLI_TELEMETRY="0")
    env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(WHEELHOUSE)}  # offline: the wheels fetched at install time
    build_dir = work / "build"
    proc = subprocess.run(
        [str(SAM), "build", "--template", str(work / "template.yaml"), "--base-dir", str(ROOT),
         "--build-dir", str(build_dir), "--cached", "--cache-dir", str(ROOT / ".aws-sam" / "test-cache")],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return build_dir


def test_the_build_holds_every_function_and_the_layer(built):
    assert (built / "RelayLayer" / "python" / "aitask_relay" / "relay.py").is_file()
    assert (built / "RelayLayer" / "python" / "aitask_relay" / "schema" / "task_result.v1.json").is_file()
    assert not (built / "RelayLayer" / "python" / "ros_emulator").exists()
    for function in FUNCTIONS:
        assert (built / built_resource(function) / "app.py").is_file(), function
        assert not (built / built_resource(function) / "aitask_relay").exists()  # the layer carries it


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_built_handler_replays_its_samples(built, tmp_path, function):
    samples = sorted((EVENTS / function).glob("*.json"))
    assert samples
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ROS_", "RELAY_", "PYTHON"))}
    env |= {"RELAY_DESTINATIONS": tmp_path.as_uri(), "POWERTOOLS_LOG_LEVEL": "ERROR"} | DEVKIT_ONLY
    env["RELAY_DEVKIT_LAMBDA_TIMEOUTS"] = lambda_timeouts_json()  # the child has no YAML parser
    proc = subprocess.run(
        [python312(), *REPLAY, "--built", str(built), *map(str, samples)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path, check=False,
    )  # fmt: skip
    outputs = replay_outputs(proc.stdout)
    assert sorted(os.path.basename(o["event"]) for o in outputs) == [p.name for p in samples], proc.stderr[-3000:]
    for output in outputs:
        name = os.path.basename(output["event"])
        if name.startswith("invalid-"):
            assert output["rejected"] == "InvalidInput", name
        else:
            assert "response" in output, name
    assert "site-packages" not in proc.stderr  # nothing came from a venv


def test_the_built_handlers_run_without_the_venv():
    # The replay above runs with python -S: prove that -S really leaves the venv's packages out.
    code = "import sys; print(any('site-packages' in p for p in sys.path))"
    out = subprocess.run([python312(), "-S", "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    # And the same check in this process (the venv) does see site-packages: the probe can tell the two apart
    assert sys.prefix != sys.base_prefix and any("site-packages" in p for p in sys.path)


def test_the_function_compute_package_replays_the_aliyun_samples(tmp_path):
    # Given the FC package, built offline from the wheelhouse, unzipped as FC lays it out (/code, /opt/python)
    import zipfile

    require("the wheelhouse", str(WHEELHOUSE), (WHEELHOUSE / ".stamp").exists(), "`make test` fetches it")
    package = [sys.executable, str(ROOT / "tools" / "fc_package.py"), "--out", str(tmp_path / "zips")]
    subprocess.run([*package, "--wheelhouse", str(WHEELHOUSE)], check=True, capture_output=True, timeout=600)
    unpacked = tmp_path / "fc"
    for name in ("code.zip", "layer.zip"):
        with zipfile.ZipFile(tmp_path / "zips" / name) as archive:
            archive.extractall(unpacked)
    assert (unpacked / "index.py").is_file() and (unpacked / "python" / "aitask_relay" / "triggers" / "fc.py").is_file()
    # When every events/aliyun sample is replayed through it with only the standard library and the layer
    samples = sorted(p for p in (EVENTS / "aliyun").iterdir() if p.suffix in (".json", ".bin"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ROS_", "RELAY_", "PYTHON"))}
    env |= {"RELAY_DESTINATIONS": (tmp_path / "out").as_uri(), "POWERTOOLS_LOG_LEVEL": "ERROR"} | DEVKIT_ONLY
    env["RELAY_DEVKIT_FC_FUNCTIONS"] = fc_functions_json()  # the child has no YAML parser
    proc = subprocess.run(
        [python312(), *REPLAY, "--built", str(unpacked), *map(str, samples)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path, check=False,
    )  # fmt: skip
    # Then each gets its answer (or its typed rejection), as from the source tree
    outputs = {os.path.basename(o["event"]): o for o in replay_outputs(proc.stdout)}
    assert sorted(outputs) == sorted(p.name for p in samples), proc.stderr[-3000:]
    for name, output in outputs.items():
        assert ("rejected" in output) == name.startswith("invalid-"), name
    assert outputs["http-get-task.json"]["response"]["statusCode"] == 200

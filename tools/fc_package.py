"""Package the Function Compute deployment: ``code.zip`` (index.py) and ``layer.zip`` (python/...).

The layer is built from the same layers/relay/requirements.txt as the AWS layer, for the runtime of the
machine that runs this (FC's default is x86_64 Linux, python3.12), from a local wheelhouse and offline
(``make fc-package`` fetches the wheelhouse first). Upload both zips to OSS and point the ROS template's
CodeBucket / CodeObject / LayerObject parameters at them (docs/deploy-fc.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = ROOT / "layers" / "relay"
ENTRY = ROOT / "functions" / "aliyun_fc" / "index.py"
CODE_ZIP, LAYER_ZIP = "code.zip", "layer.zip"


def build(out: Path, wheelhouse: Path) -> tuple[Path, Path]:
    """Write out/code.zip and out/layer.zip; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "python"  # FC unpacks layers into /opt; /opt/python is on sys.path
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
             "--find-links", str(wheelhouse), "--target", str(target), "-r", str(LAYER_SOURCE / "requirements.txt")],
            check=True,
        )  # fmt: skip
        shutil.copytree(LAYER_SOURCE / "aitask_relay", target / "aitask_relay", ignore=_junk)
        layer = _zip(Path(tmp), out / LAYER_ZIP)
    with zipfile.ZipFile(out / CODE_ZIP, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(ENTRY, "index.py")
    return out / CODE_ZIP, layer


def _junk(_folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith(".pyc")}


def _zip(root: Path, destination: Path) -> Path:
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(root).as_posix())
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "aliyun")
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / ".wheelhouse")
    args = parser.parse_args(argv)
    for path in build(args.out, args.wheelhouse):
        print(f"{path}  {path.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

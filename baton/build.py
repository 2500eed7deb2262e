"""Build Lambda artifacts: dependency layers and function zips, content-hashed so no-change is free."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from baton.errors import BatonError

RUNTIME_PYTHON = "3.11"  # the Lambda runtime the template declares (python3.11)
# For AWS the layer must hold Linux wheels for the runtime's Python, whatever builds it.
AWS_PLATFORM_ARGS = [
    "--platform", "manylinux2014_x86_64", "--implementation", "cp",
    "--python-version", RUNTIME_PYTHON, "--only-binary=:all:",
]
# Fixed timestamps make zips byte-identical across rebuilds, so their hashes mean "same content".
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_tree(source: Path, destination: Path, keep_bytecode: bool = False) -> Path:
    """Zip ``source`` deterministically (sorted, fixed times); bytecode only if asked."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_dir() or (not keep_bytecode and path.suffix == ".pyc"):
                continue
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), ZIP_EPOCH)
            info.external_attr = (path.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(destination)  # never leave a half-written zip under the final name
    return destination


def build_layer(requirements: Path, build_dir: Path, for_aws: bool = False) -> Path:
    """Install ``requirements`` into a layer zip (``python/`` root); reuse it if nothing changed."""
    key = hashlib.sha256(
        requirements.read_bytes() + f"{for_aws}{sys.version_info[:2]}".encode()
    ).hexdigest()[:16]
    layer_zip = build_dir / "layers" / f"{requirements.stem}-{key}.zip"
    if layer_zip.exists():
        return layer_zip
    staging = build_dir / "layers" / f"{requirements.stem}-{key}" / "python"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--upgrade", "--target", str(staging), "-r", str(requirements)]
    if for_aws:
        command += AWS_PLATFORM_ARGS
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BatonError(f"pip could not build the layer from {requirements}:\n"
                         + "\n".join(result.stderr.strip().splitlines()[-10:]))
    if sys.version_info[:2] == tuple(map(int, RUNTIME_PYTHON.split("."))):
        # Bytecode saves every cold start from compiling the layer (~40% of its import time).
        # unchecked-hash: valid whatever the files' mtimes after unzipping, and /opt is read-only.
        compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                                   "--invalidation-mode", "unchecked-hash", str(staging)],
                                  capture_output=True, text=True)
        if compiled.returncode != 0:
            raise BatonError(f"could not compile the layer's bytecode:\n{compiled.stdout[-2000:]}")
    return zip_tree(staging.parent, layer_zip, keep_bytecode=True)

"""Build Lambda artifacts: dependency layers and function zips, content-hashed so no-change is free."""

from __future__ import annotations

import hashlib
import shutil
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


def source_digest(folder: Path, exclude: tuple[str, ...] = ()) -> str:
    """A hash of every file's path and content under ``folder`` (caches ignored)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts or path.name in exclude:
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_function(source: Path, destination: Path) -> Path:
    """Zip a function's code folder; an unchanged folder leaves the existing zip as it is."""
    stamp = destination.with_suffix(".sha256")
    digest = source_digest(source)
    if destination.exists() and stamp.exists() and stamp.read_text() == digest:
        return destination
    zip_tree(source, destination)
    stamp.write_text(digest)
    return destination


def _install_requirements(requirements: Path, build_dir: Path, for_aws: bool) -> Path:
    """pip-install ``requirements`` into a folder reused while the file stays the same."""
    key = hashlib.sha256(
        requirements.read_bytes() + f"{for_aws}{sys.version_info[:2]}".encode()
    ).hexdigest()[:16]
    target = build_dir / "dependencies" / key
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-compile", "--target", str(target), "-r", str(requirements)]
    if for_aws:
        command += AWS_PLATFORM_ARGS
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BatonError(f"pip could not install the layer's requirements ({requirements}):\n"
                         + "\n".join(result.stderr.strip().splitlines()[-10:]))
    if sys.version_info[:2] == tuple(map(int, RUNTIME_PYTHON.split("."))):
        # Bytecode saves every cold start from compiling the layer (~40% of its import time).
        # unchecked-hash: valid whatever the files' mtimes after unzipping, and /opt is read-only.
        compiled = subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                                   "--invalidation-mode", "unchecked-hash", str(target)],
                                  capture_output=True, text=True)
        if compiled.returncode != 0:
            raise BatonError(f"could not compile the layer's bytecode:\n{compiled.stdout[-2000:]}")
    (target / ".complete").touch()
    return target


def build_layer(source: Path, build_dir: Path, for_aws: bool = False) -> Path:
    """A layer zip from a folder: its requirements.txt installed, plus its own packages.

    Everything lands under ``python/``, where the Lambda runtime looks. Reused while neither the
    requirements nor the folder's code changed.
    """
    requirements = source / "requirements.txt"
    dependencies = _install_requirements(requirements, build_dir, for_aws)
    digest = hashlib.sha256(
        (dependencies.name + source_digest(source, exclude=("requirements.txt",))).encode()
    ).hexdigest()[:16]
    layer_zip = build_dir / "layers" / f"{source.name}-{digest}.zip"
    if layer_zip.exists():
        return layer_zip
    staging = build_dir / "layers" / f"{source.name}-{digest}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(dependencies, staging / "python", ignore=shutil.ignore_patterns(".complete"))
    for entry in source.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            shutil.copytree(entry, staging / "python" / entry.name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    zip_tree(staging, layer_zip, keep_bytecode=True)
    shutil.rmtree(staging)
    return layer_zip

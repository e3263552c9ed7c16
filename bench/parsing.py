"""Parsing user files: peak memory and time (issue 24).

`python bench/parsing.py` (or `python bench/run.py --only parsing`). Generates, in a temporary folder:

- a 190 MB numeric CSV (a label and 99 float32 features a row, ~176,000 rows: under the 200 MB file limit),
  parsed from a path in the data directory and from bytes in memory (an upload);
- gzip IDX bombs of about 480 kB: a header declaring 60,000 x 28 x 28 bytes followed by 480 MB of zeros, and a
  header declaring 2**31 x 3 values (the product overflows 32 bits) followed by the same zeros.

Each parse runs in a fresh Python process (MB here are 10^6 bytes, memory included); its peak resident memory (`ru_maxrss`) is read before the parse
(imports done: torch alone is ~250 MB) and after it. Budgets: the CSV's whole process at most 600 MB (plus,
for an upload, the upload's own bytes, which the server holds before parsing) and the parse itself (pyarrow's
import included) at most 3x the table's float32 size; a bomb refused with the process below 100 MB above what it
held before the parse (the imports). Figures are printed, not asserted.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CSV_MB, CSV_FEATURES = 190, 99
BOMB_MB = 480
BUDGETS = {"csv_total_mb": 600, "csv_parse_x_numeric": 3.0, "bomb_mb": 100}

CHILD = """
import json, resource, sys, time
from pathlib import Path
from core.data import load_dataset
from core.data.files import parse_idx
from core.errors import ResidueError

kind, path = sys.argv[1], Path(sys.argv[2])
raw = path.read_bytes() if kind == "csv-bytes" else None
mb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux -> MB
before, t, outcome = mb(), time.perf_counter(), ""
try:
    if kind == "csv-path":
        ds = load_dataset("csv", path=path.name)
        outcome = f"parsed {ds.X.shape[0]} x {ds.X.shape[1]}"
    elif kind == "csv-bytes":
        ds = load_dataset("csv", data=raw)
        outcome = f"parsed {ds.X.shape[0]} x {ds.X.shape[1]}"
    else:
        with open(path, "rb") as f:
            parse_idx(f, path.name)
        outcome = "accepted (!)"
except ResidueError as e:
    outcome = f"refused: {e}"
print(json.dumps({"before": before, "peak": mb(), "seconds": time.perf_counter() - t, "outcome": outcome}))
"""


def make_csv(folder: Path) -> tuple[Path, int]:
    """A numeric CSV of CSV_MB MB (a label and CSV_FEATURES float32 features a row), written by pyarrow a
    block at a time; returns its path and its number of feature values."""
    import io

    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    path, rng, rows, block = folder / "numeric.csv", np.random.default_rng(0), 0, 2_000
    names = ["label"] + [f"f{j}" for j in range(CSV_FEATURES)]
    with open(path, "wb") as out:
        while out.tell() < CSV_MB * 10**6:
            cols = [pa.array(rng.integers(0, 10, block))]
            cols += [pa.array(rng.normal(size=block).astype(np.float32)) for _ in range(CSV_FEATURES)]
            buf = io.BytesIO()
            pacsv.write_csv(pa.table(cols, names=names), buf, pacsv.WriteOptions(include_header=rows == 0))
            out.write(buf.getvalue())
            rows += block
    return path, rows * CSV_FEATURES


def make_bomb(folder: Path, name: str, dims: tuple[int, ...]) -> Path:
    """An IDX header declaring `dims` uint8 values, then BOMB_MB MB of zeros, gzipped as it is written."""
    path = folder / name
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(bytes([0, 0, 0x08, len(dims)]) + b"".join(n.to_bytes(4, "big") for n in dims))
        zeros = bytes(10**6)
        for _ in range(BOMB_MB):
            f.write(zeros)
    return path


def child(kind: str, path: Path) -> dict:
    env = dict(os.environ, RESIDUE_DATA=str(path.parent), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _verdict(ok: bool) -> str:
    return "within budget" if ok else "OVER BUDGET"


def main() -> None:
    print(f"== parsing: peak memory of one parse in a fresh process ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f})")
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        t = time.perf_counter()
        csv, values = make_csv(folder)
        numeric_mb = values * 4 / 1e6
        print(f"numeric CSV: {csv.stat().st_size / 10**6:.0f} MB on disk, {values:,} feature values "
              f"({numeric_mb:.0f} MB as float32), written in {time.perf_counter() - t:.1f} s")
        upload_mb = csv.stat().st_size / 1e6
        for kind, what in (("csv-path", "from a path"), ("csv-bytes", "from bytes (an upload)")):
            r = child(kind, csv)
            parse = r["peak"] - r["before"]
            total = BUDGETS["csv_total_mb"] + (upload_mb if kind == "csv-bytes" else 0)  # + the upload's own bytes
            ok = r["peak"] <= total and parse <= BUDGETS["csv_parse_x_numeric"] * numeric_mb
            print(f"  {what:<24} {r['seconds']:6.1f} s; process peak {r['peak']:5.0f} MB (budget {total:.0f}"
                  f"{f' = 600 + the {upload_mb:.0f} MB upload held before parsing' if kind == 'csv-bytes' else ''}), "
                  f"before the parse {r['before']:4.0f} MB, the parse "
                  f"{parse:4.0f} MB = {parse / numeric_mb:.2f}x the float32 table (budget "
                  f"{BUDGETS['csv_parse_x_numeric']:.0f}x) -- {_verdict(ok)}; {r['outcome']}")
        for name, dims in (("bomb-declares-47MB-images-idx3-ubyte.gz", (60000, 28, 28)),
                           ("bomb-declares-2^31x3-images-idx3-ubyte.gz", (2**31, 3))):
            t = time.perf_counter()
            bomb = make_bomb(folder, name, dims)
            made = time.perf_counter() - t
            r = child("idx", bomb)
            grew = r["peak"] - r["before"]
            print(f"  gzip IDX bomb {bomb.stat().st_size / 1000:.0f} kB ({BOMB_MB} MB unpacked; made in {made:.1f} s), "
                  f"header {' x '.join(map(str, dims))}: {r['seconds']:.2f} s, the parse {grew:.0f} MB above the "
                  f"{r['before']:.0f} MB of imports (budget {BUDGETS['bomb_mb']}) -- "
                  f"{_verdict(grew < BUDGETS['bomb_mb'])}; {r['outcome']}")


if __name__ == "__main__":
    main()

"""Writes the Parquet fixtures of dataplane/tests/prefetch.rs (committed; run again only to
change them): .venv/bin/python dataplane/tests/data/make_parquet.py

- pyarrow_index.parquet: pyarrow, 4 row groups x 3 int64 columns, with page indexes;
- pyarrow_plain.parquet: the same without page indexes;
- polars.parquet: Polars, 4 row groups x 3 columns, as Polars writes them.
Values are random, so chunks barely compress and spread over several 16 KiB blocks.
"""
import pathlib
import random

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

HERE = pathlib.Path(__file__).parent
ROWS = 16_000
rng = random.Random(7)
cols = {name: [rng.getrandbits(62) for _ in range(ROWS)] for name in ("a", "b", "c")}
table = pa.table(cols)
pq.write_table(table, HERE / "pyarrow_index.parquet", row_group_size=ROWS // 4,
               write_page_index=True, compression="none")
pq.write_table(table, HERE / "pyarrow_plain.parquet", row_group_size=ROWS // 4,
               write_page_index=False, compression="none")
pl.DataFrame(cols).write_parquet(HERE / "polars.parquet", row_group_size=ROWS // 4,
                                 compression="uncompressed", statistics=False)
for f in ("pyarrow_index.parquet", "pyarrow_plain.parquet", "polars.parquet"):
    md = pq.ParquetFile(HERE / f).metadata
    print(f, (HERE / f).stat().st_size, "bytes,", md.num_row_groups, "row groups")

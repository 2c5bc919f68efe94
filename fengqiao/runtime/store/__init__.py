"""The store seam: what every service's adapters use to keep records in MongoDB (FerretDB).

- `inserts`: inserts against the unique `_id`, the one compare-and-set FerretDB keeps
  (`insert_new`, `insert_or_get`), and group commit (`GroupInsert`);
- `versions`: versioned records (`Versions`): next version by unique insert, latest by `_id`,
  the recent-versions memory, compaction; over `Records` (MongoDB, or memory for the fakes);
- `packed`: the codec of fields kept as one JSON text;
- `recent`: the bounded memory of what a process last saw (`Recent`);
- `sharded`: collections split by a hash of a key, for lookups by something else than `_id`.
"""

from fengqiao.runtime.store.inserts import DUPLICATE_KEY, GroupInsert, insert_new, insert_or_get
from fengqiao.runtime.store.packed import PACKED, pack, packed_text, unpack
from fengqiao.runtime.store.recent import Recent
from fengqiao.runtime.store.sharded import DEFAULT_SHARDS, ShardedCollection
from fengqiao.runtime.store.versions import (
    MemoryRecords,
    MongoRecords,
    Records,
    Versions,
    is_stub,
)

__all__ = [
    "DEFAULT_SHARDS",
    "DUPLICATE_KEY",
    "PACKED",
    "GroupInsert",
    "MemoryRecords",
    "MongoRecords",
    "Recent",
    "Records",
    "ShardedCollection",
    "Versions",
    "insert_new",
    "insert_or_get",
    "is_stub",
    "pack",
    "packed_text",
    "unpack",
]

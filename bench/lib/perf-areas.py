"""Sum `perf report --no-children --sort dso,symbol --stdio -g none` self time by area."""
import re
import sys

AREAS = [
    ("SQLite page cache (pcache*)", r"pcache"),
    ("SQLite WAL (wal*, pagerWal*)", r"^(wal|pagerWal)"),
    ("SQLite B-tree, VDBE, pager, other", r"^(sqlite3|btree|balance|vdbe|pager|insertCell|moveto|fillInCell|getAndInit|rebuildPage|editPage|allocateSpace|dropCell|sqlite|decodeFlags|btreeParse|computeNumericType|accessPayload|getCell|cellSize|pageFindSlot|freeSpace|defragment|copyNodeContent|clearCell|releasePage|unixWrite|unixRead|unixSync|memjrnl|readDbPage|getPageNormal|hashIndex|syncJournal)"),
    ("malloc/free (libc)", r"(malloc|free|unlink_chunk|_int_|consolidate|tcache|realloc)"),
    ("memcpy/memset/memcmp (libc)", r"(memmove|memcpy|memset|memcmp)"),
    ("serde_json (parse, Value maps)", r"(serde|btree::)"),
    ("HMAC/SHA-256", r"(sha2|hmac|Sha256)"),
    ("hyper/axum/tower/tokio", r"(hyper|axum|tower|tokio|futures|h1|http|mio)"),
    ("sqlx", r"sqlx"),
]
totals = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)", line)
    if not m:
        continue
    pct, kind, sym = float(m[1]), m[3], m[4].strip()
    if kind == "k":
        area = "kernel (syscalls, scheduling, TCP, ext4, fsync)"
    else:
        area = next((a for a, rx in AREAS if re.search(rx, sym, re.I)), "other user space")
    totals[area] = totals.get(area, 0) + pct
for area, pct in sorted(totals.items(), key=lambda x: -x[1]):
    print(f"{pct:6.1f}%  {area}")

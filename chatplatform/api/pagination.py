"""Paging bounds shared by every list route."""

# Offsets past this are refused (422): a database cannot take an unbounded integer (an offset of
# 10**30 made SQLite raise OverflowError, a 500, before this bound existed).
MAX_OFFSET = 1_000_000_000

"""Paging shared by list routes: offset bounds, and seed 001's page/limit/sort/order."""

# Offsets past this are refused (422): a database cannot take an unbounded integer (an offset of
# 10**30 made SQLite raise OverflowError, a 500, before this bound existed).
MAX_OFFSET = 1_000_000_000


# --- seed 001's pagination: ?page=1&limit=20&sort=created_at&order=desc --------------------------

PAGE_LIMIT_DEFAULT = 20
PAGE_LIMIT_MAX = 100


def page_query_serializer(sort_fields: list[str]):
    """A query serializer for seed 001's ``page``/``limit``/``sort``/``order`` over ``sort_fields``
    (an unknown sort field or order is a 422 naming it)."""
    from rest_framework import serializers

    class PageQuery(serializers.Serializer):
        page = serializers.IntegerField(min_value=1, max_value=MAX_OFFSET, required=False,
                                        help_text="1-based page number.")
        limit = serializers.IntegerField(min_value=1, max_value=PAGE_LIMIT_MAX, required=False,
                                         help_text=f"Items per page (default {PAGE_LIMIT_DEFAULT}, "
                                                   f"at most {PAGE_LIMIT_MAX}).")
        sort = serializers.ChoiceField(choices=sort_fields, required=False)
        order = serializers.ChoiceField(choices=["asc", "desc"], required=False, default="asc")

    return PageQuery


def paginate(items: list, *, page: int, limit: int) -> tuple[list, dict]:
    """One page of ``items`` and seed 001's ``pagination`` block."""
    total = len(items)
    pages = max(1, -(-total // limit))
    start = (page - 1) * limit
    return items[start:start + limit], {
        "page": page, "limit": limit, "total": total, "pages": pages,
        "has_next": page < pages, "has_prev": page > 1,
    }

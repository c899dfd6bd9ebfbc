"""Paging shared by list routes: seed 003's skip/limit (bare lists with ``X-Total-Count``), offset
bounds, and seed 001's page/limit/sort/order."""

from rest_framework import serializers

# Offsets past this are refused (422): a database cannot take an unbounded integer (an offset of
# 10**30 made SQLite raise OverflowError, a 500, before this bound existed).
MAX_OFFSET = 1_000_000_000


OFFSET_LIMIT_DEFAULT = 100
OFFSET_LIMIT_MAX = 1000


class OffsetPageInput(serializers.Serializer):
    """Seed 003's pagination: ``skip`` (default 0) and ``limit`` (default 100, at most 1000)."""

    skip = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=OFFSET_LIMIT_MAX, required=False,
                                     default=OFFSET_LIMIT_DEFAULT)


def offset_page(qs, params: dict) -> tuple[list, int]:
    """One ``skip``/``limit`` page of a queryset, and the total (for ``X-Total-Count``)."""
    total = qs.count()
    skip, limit = params.get("skip", 0), params.get("limit", OFFSET_LIMIT_DEFAULT)
    return list(qs[skip:skip + limit]), total


# --- seed 001's pagination: ?page=1&limit=20&sort=created_at&order=desc --------------------------

PAGE_LIMIT_DEFAULT = 20
PAGE_LIMIT_MAX = 100


def page_query_serializer(sort_fields: list[str]):
    """A query serializer for seed 001's ``page``/``limit``/``sort``/``order`` over ``sort_fields``
    (an unknown sort field or order is a 422 naming it)."""
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

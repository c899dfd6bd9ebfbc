"""Completion and SSE routes (seeds 001 and 004)."""

urlpatterns: list = []

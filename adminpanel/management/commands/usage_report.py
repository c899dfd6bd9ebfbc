"""``manage.py usage_report``: usage records rolled up by day, by model, provider and user."""

from __future__ import annotations

import json
from datetime import date, timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from adminpanel import services


class Command(BaseCommand):
    help = "Roll usage records up per day (tokens, cost, requests, errors, latency) and print them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=7, help="How many days back, today included (default 7).")
        parser.add_argument("--json", action="store_true", help="Print the roll-ups as JSON.")

    def handle(self, *args, days: int = 7, json: bool = False, **options) -> None:
        if not 1 <= days <= 366:
            self.stderr.write("--days must be between 1 and 366")
            raise SystemExit(2)
        today = timezone.localdate()
        wanted: list[date] = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
        rollups = [services.usage_rollup(day=day) for day in tqdm(wanted, desc="days", unit="day", file=self.stderr)]
        if json:
            self.stdout.write(_dumps(rollups))
            return
        self.stdout.write(f"{'day':<12}{'requests':>10}{'errors':>8}{'tokens':>12}{'cost':>12}{'avg ms':>10}")
        for rollup in rollups:
            t = rollup["total"]
            self.stdout.write(f"{rollup['day']:<12}{t['requests']:>10}{t['errors']:>8}{t['tokens']:>12}"
                              f"{t['cost']:>12.6f}{t['avg_latency_ms']:>10.1f}")
            for model, figures in rollup["by_model"].items():
                self.stdout.write(f"  {model:<30}{figures['requests']:>8} req {figures['tokens']:>10} tok")


def _dumps(rollups: list) -> str:
    return json.dumps(rollups, indent=2)

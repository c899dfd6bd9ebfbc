"""``manage.py provider_health``: check every configured provider now and print the result."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand
from tqdm import tqdm

from providers import selectors
from providers.health import provider_health


class Command(BaseCommand):
    help = "Check each configured provider's health (exit status 1 if any is unhealthy)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, json: bool = False, **options) -> None:
        report = {}
        for provider in tqdm(selectors.configured_providers(), desc="providers", unit="provider", file=self.stderr):
            report[provider.name] = provider_health(provider)
        if json:
            self.stdout.write(_dumps(report))
        else:
            for name, result in report.items():
                line = f"{name}: {result['status']} in {result['response_time']:.3f}s (model {result['model']})"
                if result.get("error"):
                    line += f": {result['error']}"
                self.stdout.write(line)
        if any(result["status"] != "healthy" for result in report.values()):
            raise SystemExit(1)


def _dumps(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)

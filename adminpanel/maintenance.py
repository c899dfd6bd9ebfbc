"""The maintenance task registry: seed 000's ``POST /admin/system/maintenance?task=<name>``.

Adding a task is one line here: a name, a description and the service it runs (a function with
no required arguments returning a JSON-able dict). Each runs as the Celery task
``adminpanel.tasks.maintenance_run``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adminpanel import services


@dataclass(frozen=True)
class MaintenanceTask:
    name: str
    description: str
    run: Callable[[], dict]


TASKS: dict[str, MaintenanceTask] = {task.name: task for task in [
    MaintenanceTask("cleanup_logs", "Prune the request log by age and roll the log file over.", services.logs_cleanup),
    MaintenanceTask("refresh_cache", "Reload the provider catalogue and configuration in every worker.",
                    services.caches_refresh),
    MaintenanceTask("health_check", "Check components and every configured provider.", services.system_health_check),
    MaintenanceTask("prune_conversations", "Delete conversations older than CONVERSATION_RETENTION_DAYS.",
                    services.conversations_prune),
    MaintenanceTask("reindex_faqs", "Recompute every FAQ embedding.", services.faqs_reindex),
    MaintenanceTask("reindex_documents", "Parse, chunk, embed and index every document again.",
                    services.documents_reindex),
    MaintenanceTask("usage_rollup", "Roll yesterday's usage records up by model, provider and user.",
                    services.usage_rollup),
]}


def task_names() -> list[str]:
    return sorted(TASKS)

"""MLflow tracking: one run per cell, looked up by its cell key so reruns resume.

Uses ``MlflowClient`` (no global fluent state). The default store is a SQLite file
in the project (:func:`bench.defaults.tracking_uri`); any MLflow URI works.
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from typing import Any
from collections.abc import Iterator

from mlflow.entities import Metric, Param, Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.time import get_current_time_millis

from bench import defaults, interrupts
from bench.claims import schema_lock

TAG_PREFIX = "bench."
#: MLflow 3's UI opens an experiment of this kind on its training-runs view, not the GenAI one
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
for _noisy in ("alembic", "mlflow.store.db.utils"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


def _is_schema_race(err: Exception) -> bool:
    text = str(err).lower()
    return any(m in text for m in ("already exists", "alembic", "duplicate", "database is locked"))


def _is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/")) or "://" not in uri


class Tracker:
    """An MLflow experiment that stores cells."""

    def __init__(self, experiment: str, tracking_uri: str | None = None) -> None:
        self.uri = tracking_uri or defaults.tracking_uri()
        self.experiment_name = experiment
        # The first access creates (or migrates) the store's tables; MLflow's migrations are
        # not safe to run from two processes at once ("table _alembic_tmp_... already exists"),
        # so a SQLite store is opened under a file lock beside it, a server store with retries.
        with schema_lock(self.uri):
            for attempt in range(5):
                try:
                    self.client = MlflowClient(tracking_uri=self.uri)
                    self.experiment_id = self._ensure_experiment(experiment)
                    break
                except Exception as err:  # a concurrent migration on a server database
                    if attempt == 4 or not _is_schema_race(err):
                        raise
                    time.sleep(1.0 * (attempt + 1))

    def _ensure_experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if EXPERIMENT_KIND[0] not in found.tags:  # a store made before the tag: UI opens on runs too
                self.client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
            return found.experiment_id
        location = None
        if _is_local(self.uri):
            path = defaults.artifact_root(self.uri) / name
            path.mkdir(parents=True, exist_ok=True)
            location = path.as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
        except MlflowException:  # another worker created it a moment ago
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def finished_run(self, cell_key: str) -> Run | None:
        """The finished run of ``cell_key``, if any."""
        runs = self.search(f"tags.`{TAG_PREFIX}cell_key` = '{cell_key}' and attributes.status = 'FINISHED'")
        return runs[0] if runs else None

    def search(self, filter_string: str = "") -> list[Run]:
        out: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string,
                                           max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def parent_run(self, key: str, name: str, tags: dict[str, Any], claims=None) -> str:
        """The id of the parent run tagged ``parent_key=key``, created on first use.

        With a :class:`bench.claims.ClaimStore`, concurrent workers agree on one parent:
        each may create a candidate, the first id frozen under the key wins and the
        losers delete theirs.
        """
        if claims is not None:
            known = claims.frozen(f"parent:{key}")
            if known is not None:
                return known
        found = self.search(f"tags.`{TAG_PREFIX}parent_key` = '{key}'")
        if found:
            run_id = min(found, key=lambda r: r.info.start_time).info.run_id
            return claims.freeze(f"parent:{key}", run_id) if claims is not None else run_id
        run = self.client.create_run(self.experiment_id, run_name=name,
                                     tags={**{f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items()},
                                           f"{TAG_PREFIX}parent_key": key, f"{TAG_PREFIX}kind": "parent"})
        run_id = run.info.run_id
        if claims is not None:
            winner = claims.freeze(f"parent:{key}", run_id)
            if winner != run_id:
                self.client.delete_run(run_id)
                return winner
        return run_id

    def finish_parent(self, run_id: str) -> None:
        self.terminate(run_id, "FINISHED")

    def terminate(self, run_id: str, status: str) -> None:
        """End run ``run_id`` as ``status`` (FINISHED, FAILED or KILLED), never cut by Ctrl-C."""
        with interrupts.deferred():
            self.client.set_terminated(run_id, status=status)

    def running(self, filter_string: str = "") -> list[Run]:
        """Runs of the experiment still marked RUNNING (``filter_string`` narrows them)."""
        extra = f" and {filter_string}" if filter_string else ""
        return self.search(f"attributes.status = 'RUNNING'{extra}")

    @contextmanager
    def run(self, name: str, tags: dict[str, Any], params: dict[str, Any],
            parent_run_id: str | None = None) -> Iterator[RunLogger]:
        """Open a run (nested under ``parent_run_id`` when given); it ends FINISHED on
        success, KILLED on Ctrl-C, FAILED on an error."""
        all_tags = {f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items()}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        logger = RunLogger(self.client, run.info.run_id)
        logger.log_params(params)
        status = RunStatus.to_string(RunStatus.FAILED)
        try:
            yield logger
            status = RunStatus.to_string(RunStatus.FINISHED)
        except KeyboardInterrupt:
            status = RunStatus.to_string(RunStatus.KILLED)
            raise
        finally:
            self.terminate(run.info.run_id, status)


class RunLogger:
    """Thin helper over one run id."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        items = [Param(k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in sorted(params.items())]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        now = get_current_time_millis()
        items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, f"{TAG_PREFIX}{key}", str(value))

    def log_dict(self, obj: Any, name: str) -> None:
        self.client.log_dict(self.run_id, obj, name)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

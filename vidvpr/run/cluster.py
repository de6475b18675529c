"""The Dask `distributed` executor: the same units, run by the workers of a Dask cluster.

* Units are submitted as tasks (`run_unit` around the unit's own function). A user error
  (`VidvprError`) comes back as a failure, once: Dask does not retry it and the other units go on;
  any other exception is retried `retries` times; a worker that dies mid-unit has its units
  rescheduled by the scheduler (up to `distributed.scheduler.allowed-failures` deaths). A killed
  unit leaves only hidden partial files (atomic outputs), which its retry removes on the same host.
* Progress: each attempt reports frames through the scheduler's event log (`log_event`, at most
  every PROGRESS_EVERY_S); the client folds attempts into one count for one bar.
* Retries: a unit that started more than once is listed with the reason (the worker that died
  under it, or the error it raised).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vidvpr.core.errors import OutputError, ToolMissing, VidvprError
from vidvpr.core.provenance import command_line, running_for
from vidvpr.run import probe
from vidvpr.run.units import (
    Progress,
    ProgressTracker,
    RunReport,
    Unit,
    UnitFailure,
    UnitRetry,
    call_unit,
    failure_of,
    total_weight,
)

LOG = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5
DEFAULT_RETRIES = 2  # re-runs of a unit that raised an unexpected (not a user) error
BROADCAST_ATTEMPTS = 3  # tries of a broadcast to every worker (the model, the storage probe) when workers die
BROADCAST_PAUSE_S = 1.0


@dataclass(frozen=True)
class _Shared:
    """A value sent to every worker once, pickled whole (Dask's generic serialiser for torch modules
    would rebuild a model's namedtuples as plain tuples)."""

    value: Any


def _unwrap(value: Any) -> Any:
    return value.value if isinstance(value, _Shared) else value


@dataclass(frozen=True)
class _Outcome:
    value: Any
    failure: UnitFailure | None


class _Reporter:
    """A unit's progress callback on a worker: frames summed, sent as one event per interval."""

    def __init__(self, worker: Any, topic: str, index: int, attempt: str) -> None:
        self._worker, self._topic, self._index, self._attempt = worker, topic, index, attempt
        self._pending, self._sent_at = 0, time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, frames: int) -> None:
        with self._lock:
            self._pending += frames
            if time.monotonic() - self._sent_at >= PROGRESS_EVERY_S:
                self._send()

    def flush(self) -> None:
        with self._lock:
            self._send()

    def _send(self) -> None:
        if self._pending:
            self._worker.log_event(self._topic, {"i": self._index, "a": self._attempt, "n": self._pending})
        self._pending, self._sent_at = 0, time.monotonic()


def run_unit(unit: Unit, topic: str, index: int, command: list[str], markers: list[str], args: list[Any],
             kwargs: dict[str, Any]) -> _Outcome:
    """Run on a worker: one attempt of one unit, announced, with its progress sent to the client.
    (`args` and `kwargs` travel outside `unit` so that Dask replaces shared values in them.)"""
    from distributed import get_worker

    unit = replace(unit, args=tuple(map(_unwrap, args)), kwargs={k: _unwrap(v) for k, v in kwargs.items()})
    worker = get_worker()
    attempt = uuid.uuid4().hex[:8]
    worker.log_event(f"{topic}-attempts", {"i": index, "a": attempt, "start": worker.address, "pid": os.getpid()})
    unseen = probe.unseen_marker(markers)
    if unseen is not None:
        return _Outcome(None, failure_of(unit.name, OutputError(
            f"worker {worker.address} does not see {unseen} (not on the shared storage)")))
    reporter = _Reporter(worker, topic, index, attempt)
    try:
        with running_for(command):
            value = call_unit(unit, reporter)
    except VidvprError as exc:  # the user's to fix: reported once, never retried
        return _Outcome(None, failure_of(unit.name, exc))
    except Exception as exc:
        worker.log_event(f"{topic}-attempts", {"i": index, "a": attempt, "error": failure_of(unit.name, exc).error})
        raise
    finally:
        reporter.flush()
    return _Outcome(value, None)


class DaskExecutor:
    """Runs units on the workers of the Dask cluster `client` is connected to."""

    name = "dask"

    def __init__(self, client: Any, retries: int = DEFAULT_RETRIES) -> None:
        self.client = client
        self.retries = retries
        self.reports: list[RunReport] = []
        self._markers: list[Path] = []
        self.dashboard = _dashboard_link(client)

    @property
    def workers(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def share(self, value: Any) -> Any:
        """A large argument several units take (a model): sent once to every worker."""
        return self._broadcast(lambda: self.client.scatter(_Shared(value), broadcast=True, hash=False),
                               "sending the model to every worker")

    def _broadcast(self, call: Callable[[], Any], what: str) -> Any:
        """`call`, a broadcast to every worker, made again on the workers there are when one dies during it
        (the scheduler's broadcast then fails as a whole: CommClosedError); ToolMissing, one line, when
        it keeps failing. A worker killed while the model was being sent ended the run in a traceback."""
        from distributed.comm.core import CommClosedError

        attempt = 1
        while True:
            try:
                return call()
            except CommClosedError as exc:
                if attempt == BROADCAST_ATTEMPTS:
                    raise ToolMissing(f"{what} failed {attempt} times, a worker's connection closing each time "
                                      f"({exc}); check the workers (dask worker) and run again") from None
                LOG.warning("%s: a worker was lost during it (%s); again, on the workers there are now", what, exc)
                time.sleep(BROADCAST_PAUSE_S)  # the scheduler notices the dead worker meanwhile
                attempt += 1

    def check_shared(self, outputs: Sequence[Path], inputs: Sequence[Path] = ()) -> None:
        """OutputError naming every worker that cannot see and write `outputs` or see `inputs` (the
        output folders must exist); the client's probe files stay as markers until `close`."""
        workers = self.workers
        if not workers:
            raise ToolMissing(f"the Dask scheduler at {self.client.scheduler.address} has no workers; "
                              "start some (dask worker ADDRESS)")
        token, markers = probe.write_markers([Path(folder).absolute() for folder in outputs])
        try:
            sizes = probe.input_sizes(inputs)
            answers = self._broadcast(lambda: self.client.run(_probe_on_worker, [str(m) for m in markers], token,
                                                              sizes, workers=self.workers),
                                      "checking that every worker sees the folders")
            problems = {worker: why for worker, why in answers.items() if why}
            for worker in answers:
                why = problems.get(worker) or probe.client_reads(markers, token, worker)
                if why:
                    problems[worker] = why
        except BaseException:
            probe.remove_probe_files(markers, token, keep_markers=False)
            raise
        probe.remove_probe_files(markers, token, keep_markers=not problems)
        if problems:
            raise OutputError(probe.problems_message(problems, len(answers)))
        self._markers.extend(markers)

    def run(self, units: Sequence[Unit], on_start: Callable[[int | None], None] | None = None,
            on_progress: Progress | None = None, concurrency: int = 1,
            on_abort: Callable[[], None] | None = None) -> RunReport:
        """Run every unit on the cluster (`concurrency` and `on_abort` are the in-process executor's);
        a value per unit in order, failures and retries in the report."""
        started = time.perf_counter()
        if on_start:
            on_start(total_weight(units))
        token = uuid.uuid4().hex[:12]
        topic = f"vidvpr-{token}"
        tracker = ProgressTracker(units, on_progress)
        inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        starts: dict[str, tuple[int, str]] = {}  # attempt -> (unit, worker)
        errors: dict[int, list[str]] = {}
        self.client.subscribe_topic(topic, lambda event: inbox.put(("progress", event[1])))
        self.client.subscribe_topic(f"{topic}-attempts", lambda event: inbox.put(("attempt", event[1])))
        markers = [str(m) for m in self._markers]
        futures = [self.client.submit(run_unit, replace(unit, args=(), kwargs={}), topic, i, command_line(), markers,
                                      list(unit.args), dict(unit.kwargs), key=f"vidvpr-{token}-{i}",
                                      retries=self.retries, pure=False) for i, unit in enumerate(units)]
        index_of = {future.key: i for i, future in enumerate(futures)}
        for future in futures:
            future.add_done_callback(lambda f: inbox.put(("done", f)))
        values: list[Any] = [None] * len(units)
        failures: dict[int, UnitFailure] = {}
        remaining = len(futures)
        try:
            while remaining:
                try:
                    kind, item = inbox.get(timeout=0.5)
                except queue.Empty:
                    continue
                if kind == "progress":
                    tracker.advance(item["i"], item["a"], item["n"])
                elif kind == "attempt":
                    _note_attempt(item, starts, errors)
                else:
                    i = index_of[item.key]
                    self._collect(item, units[i], i, values, failures)
                    tracker.finish(i)
                    remaining -= 1
        except BaseException:
            self.client.cancel(futures)  # units already running finish their current file, atomically
            raise
        finally:
            for suffix in ("", "-attempts"):
                self.client.unsubscribe_topic(topic + suffix)
        for _, event in self._events(f"{topic}-attempts"):
            _note_attempt(event, starts, errors)
        retried = _retries(units, [f.key for f in futures], starts, errors, self._events)
        for retry in retried:
            LOG.warning("%s: run %d times (%s)", retry.unit, retry.attempts, retry.reason)
        report = RunReport(self.name, values, [failures[i] for i in sorted(failures)], retried,
                           round(time.perf_counter() - started, 3))
        self.reports.append(report)
        return report

    def _collect(self, future: Any, unit: Unit, i: int, values: list[Any], failures: dict[int, UnitFailure]) -> None:
        if future.status == "finished":
            outcome = future.result()
            if outcome.failure is not None:
                failures[i] = outcome.failure
            else:
                values[i] = outcome.value
        elif future.status == "error":
            failures[i] = failure_of(unit.name, future.exception())
        else:
            failures[i] = UnitFailure(unit.name, f"{future.status} by the scheduler", 1)
        future.release()

    def _events(self, topic: str) -> list[tuple[float, Any]]:
        """The scheduler's events of `topic` (none if it cannot send them: they explain, never decide)."""
        try:
            return list(self.client.get_events(topic))
        except Exception as exc:
            LOG.info("cannot read the scheduler's %s events (%s)", topic, exc)
            return []

    def close(self) -> None:
        """Remove the storage markers and disconnect."""
        probe.remove_files(self._markers)
        self._markers = []
        self.client.close()


def _probe_on_worker(markers: list[str], token: str, inputs: list[tuple[str, int]],
                     dask_worker: Any = None) -> str | None:
    return probe.worker_probe(markers, token, inputs, dask_worker.address)


def _note_attempt(event: dict[str, Any], starts: dict[str, tuple[int, str]], errors: dict[int, list[str]]) -> None:
    if "start" in event:
        starts[event["a"]] = (event["i"], event["start"])
    elif "error" in event:
        errors.setdefault(event["i"], [])
        if event["error"] not in errors[event["i"]]:
            errors[event["i"]].append(event["error"])


def _retries(units: Sequence[Unit], keys: list[str], starts: dict[str, tuple[int, str]],
             errors: dict[int, list[str]], events: Callable[[str], list[tuple[float, Any]]]) -> list[UnitRetry]:
    """Units started more than once, with the workers that died under them (read from those workers'
    remove-worker events) or the errors they raised."""
    workers_of: dict[int, list[str]] = {}
    for i, worker in starts.values():
        workers_of.setdefault(i, []).append(worker)
    retried = {i: started_on for i, started_on in sorted(workers_of.items()) if len(started_on) > 1}
    lost: dict[str, set[str]] = {}  # worker -> unit keys it was running when it was removed
    for worker in dict.fromkeys(w for started_on in retried.values() for w in started_on):
        for _, event in events(worker):
            if isinstance(event, dict) and event.get("action") == "remove-worker":
                lost.setdefault(worker, set()).update(map(str, event.get("processing-tasks", ())))
    out = []
    for i, started_on in retried.items():
        reasons = [f"worker {w} died while running it" for w in dict.fromkeys(started_on) if keys[i] in lost.get(w, ())]
        reasons += [f"error: {e}" for e in errors.get(i, [])]
        out.append(UnitRetry(units[i].name, len(started_on), "; ".join(reasons) or "started again by the scheduler"))
    return out


def _dashboard_link(client: Any) -> str | None:
    """The scheduler's dashboard address, when it serves one (it needs bokeh)."""
    try:
        if "dashboard" not in client.scheduler_info(n_workers=0).get("services", {}):
            return None
        if not client.run_on_scheduler(_serves_dashboard):
            return None
        return str(client.dashboard_link)
    except Exception:  # a scheduler that refuses run_on_scheduler: no link rather than a failed run
        return None


def _serves_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


PROBE_TIMEOUT_S = 2.0  # a host that neither accepts nor refuses is left to Dask's own (longer) timeout


def _refuse_if_nothing_listens(address: str) -> None:
    """ConnectionRefusedError at once when the scheduler's host answers that nothing listens on the
    port: Dask's Client would retry until its whole connect timeout (30 s by default) has passed.
    Only tcp:// and tls:// addresses are probed; a silent host (firewall, no route) is not decided here."""
    from distributed.comm import parse_address, parse_host_port, resolve_address

    scheme, location = parse_address(resolve_address(address))
    if scheme not in ("tcp", "tls"):
        return
    host, port = parse_host_port(location)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except ConnectionRefusedError:
        raise ConnectionRefusedError(f"connection refused: nothing listens on {host}:{port}") from None
    except OSError:  # timeout, unreachable network: Dask decides with its own timeout
        return


def connect(address: str, timeout_s: float | None = None) -> DaskExecutor:
    """A DaskExecutor on the scheduler at `address`; ToolMissing (exit 3) in one line when it cannot
    be reached within `timeout_s` (default: Dask's `distributed.comm.timeouts.connect`)."""
    from distributed import Client
    from distributed.comm import resolve_address

    if not LOG.isEnabledFor(logging.INFO):  # Dask's own log lines would break the one-line errors
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
    try:
        # a malformed address is refused here: a Client that fails on one lingers and its __del__
        # prints a traceback after a minute's wait
        resolve_address(address)
        _refuse_if_nothing_listens(address)
        options = {} if timeout_s is None else {"timeout": timeout_s}
        client = Client(address, set_as_default=False, **options)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ToolMissing(f"cannot reach the Dask scheduler at {address} ({reason}); start one (dask scheduler) "
                          "or fix --scheduler / DASK_SCHEDULER_ADDRESS") from exc
    return DaskExecutor(client)

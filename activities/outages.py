"""An outage in the worker's log: one line when it starts, a count while it lasts, one line
when it ends.

A 30 s database cut once wrote 4.2 MB to the worker's log: a traceback per failed activity (SQL
and org ids included), a warning per retry, per slow workflow task and per poll Temporal's core
retried. Each of them says the same thing: a component is out. `OutageLog` is a filter on the
worker's log handler (workers/runtime/logs.py) that lets the first of them through, rewritten to say
so, counts the rest, reports the count every `report_every` seconds while the outage lasts,
and writes one line when it ends: at the first success of an activity that had failed for it
(an attempt that began after the outage did), or, when no activity failed for it (Temporal, whose successful polls nobody sees), once nothing
has been counted for `quiet_end` seconds.

A record takes part when it carries `failure_type` (activities/errors.py `outage_of` says which
types are outages) and `failure_message`, or when it is one of the SDK core's warnings: a
retried gRPC call (Temporal out) or a workflow task over 5 s (TMPRL1104: counted under the open
outage, whose steps it waited for; with none open, summarised the same way on its own)."""

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from activities.errors import outage_of

_GRPC_RETRIED = re.compile(r"gRPC call (\w+) retried \d+ times")
# The gRPC status in the core's fields: Status { code: Unavailable, message: "tcp connect error", ... }
_GRPC_STATUS = re.compile(r'code: (\w+), message: \\?"(.*?)\\?"')
_SLOW_WORKFLOW_TASK = "[TMPRL1104]"
SLOW_WORKFLOW_TASKS = "slow workflow tasks (TMPRL1104)"


@dataclass
class _Episode:
    """An outage (or a run of slow workflow tasks) as the log tells it."""
    name: str
    unit: str                    # what `count` counts
    started: float
    reported: float
    last_seen: float
    last_message: str
    count: int = 0
    orgs: set[str] = field(default_factory=set)
    # Activity types that failed for it: the first success of one of them ends it.
    activity_types: set[str] = field(default_factory=set)
    slow_workflow_tasks: int = 0

    def counts(self, now: float) -> str:
        text = f"{_seconds(now - self.started)}: {self.count:,} {self.unit}"
        if self.orgs:
            text += f", {len(self.orgs):,} org(s)"
        if self.slow_workflow_tasks:
            text += f", {self.slow_workflow_tasks:,} {SLOW_WORKFLOW_TASKS}"
        return text


def _seconds(span: float) -> str:
    return f"{span:.0f} s" if span < 120 else f"{span / 60:.1f} min"


def _workflow_id(record: logging.LogRecord) -> str | None:
    for attr in ("temporal_activity", "temporal_workflow"):
        info = getattr(record, attr, None)
        if isinstance(info, dict) and info.get("workflow_id"):
            return info["workflow_id"]
    return None


class OutageLog(logging.Filter):
    def __init__(self, report_every: float = 30.0, quiet_end: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger | None = None,
                 tick_every: float | None = 1.0) -> None:
        """tick_every: how often a thread calls `tick` while an episode is open (None: no thread,
        the caller ticks)."""
        super().__init__()
        self.report_every, self.quiet_end, self.clock, self.tick_every = report_every, quiet_end, clock, tick_every
        self.logger = logger or logging.getLogger("billing.outage")
        self.open: dict[str, _Episode] = {}
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        """False: counted, not written. A record that opens an episode is rewritten to say so."""
        if record.name == self.logger.name:
            return True   # this filter's own lines
        failure_type = getattr(record, "failure_type", None)
        component = outage_of(failure_type) if isinstance(failure_type, str) else None
        if component is not None:
            return self._seen(f"{component} outage", "failed attempt(s)",
                              getattr(record, "failure_message", None) or record.getMessage(), record)
        if not record.name.startswith("temporalio.core"):
            return True
        text = record.getMessage()
        retried = _GRPC_RETRIED.search(text)
        if retried:
            status = _GRPC_STATUS.search(text)
            why = f" ({status.group(1)}: {status.group(2)})" if status else ""
            return self._seen("Temporal outage", "retried call(s)", f"Temporal unreachable: {retried.group(0)}{why}",
                              record)
        if _SLOW_WORKFLOW_TASK in text:
            with self._lock:
                outages = [e for e in self.open.values() if e.name != SLOW_WORKFLOW_TASKS]
                if outages:   # it waited on a step that waits for the outage
                    outages[0].slow_workflow_tasks += 1
                    return False
            return self._seen(SLOW_WORKFLOW_TASKS, "slow task(s)", text, record)
        return True

    def _seen(self, name: str, unit: str, message: str, record: logging.LogRecord) -> bool:
        now = self.clock()
        workflow_id = _workflow_id(record)
        activity_type = (getattr(record, "temporal_activity", None) or {}).get("activity_type")
        with self._lock:
            episode = self.open.get(name)
            starts = episode is None
            if starts:
                episode = self.open[name] = _Episode(name, unit, now, now, now, message)
            episode.count += 1
            episode.last_seen, episode.last_message = now, message
            if workflow_id:
                episode.orgs.add(workflow_id)
            if activity_type:
                episode.activity_types.add(activity_type)
        if not starts:
            return False
        # Its first line, without a traceback: an outage is not a bug.
        record.msg, record.args, record.exc_info, record.exc_text = (
            f"{name}: {message} (what needs it waits and is retried; a count every {self.report_every:.0f} s while "
            "it lasts, one line when it ends)", (), None, None)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self._start_ticker()
        return True

    def succeeded(self, activity_type: str, began: float | None = None) -> None:
        """An activity completed: the outages it had failed for are over, unless its attempt began
        (`began`, on this filter's clock) before the outage did: such an attempt may have done its
        work before the cut and proves nothing (one finished 10 ms after a cut, ended the outage
        and left its next 34 s told as a second outage)."""
        if not self.open:   # the common case, without the lock
            return
        with self._lock:
            ended = [e for e in self.open.values()
                     if activity_type in e.activity_types and (began is None or began >= e.started)]
            for episode in ended:
                del self.open[episode.name]
        now = self.clock()
        for episode in ended:
            self.logger.warning("%s over (%s succeeded) after %s", episode.name, activity_type, episode.counts(now))

    def tick(self) -> None:
        """The count of every episode due for one; the end of those that end by going quiet."""
        now = self.clock()
        reports, ended = [], []
        with self._lock:
            for episode in list(self.open.values()):
                if not episode.activity_types and now - episode.last_seen >= self.quiet_end:
                    del self.open[episode.name]
                    ended.append(episode)
                elif now - episode.reported >= self.report_every:
                    episode.reported = now
                    reports.append(episode)
        for episode in reports:
            self.logger.warning("%s goes on, %s; last: %s", episode.name, episode.counts(now), episode.last_message)
        for episode in ended:
            self.logger.warning("%s over (none for %.0f s) after %s", episode.name, self.quiet_end,
                                episode.counts(episode.last_seen))

    def _start_ticker(self) -> None:
        with self._lock:
            if self._ticker is None and self.tick_every is not None:
                self._ticker = threading.Thread(target=self._tick_while_open, name="outage-log", daemon=True)
                self._ticker.start()

    def _tick_while_open(self) -> None:
        while True:
            time.sleep(self.tick_every)
            self.tick()
            with self._lock:
                if not self.open:
                    self._ticker = None
                    return


# The worker process's: its log handler filters through it (workers/runtime/logs.py) and its activities
# report their successes to it (workers/runtime/worker.py).
OUTAGES = OutageLog()

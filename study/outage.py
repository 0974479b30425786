"""MLflow that does not answer: requests that fail fast, an outage's state and console lines, patient retries, and the
check before a study starts that its tracking server answers."""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from trainers.errors import ConfigError

T = TypeVar("T")
REQUEST_TIMEOUT_S = 10  # one HTTP request to MLflow; the study's own retries, not MLflow's, decide how long it waits
FIRST_WAIT_S, LONGEST_WAIT_S = 1.0, 16.0  # between tries while MLflow does not answer: doubling from the first
DEFAULT_PATIENCE_S = 600.0  # how long a study waits for MLflow at the end of a stage before it stops, resumable
_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S)}
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\"()]+")
_QUOTED = re.compile(r"'([^']+)'")


class TrackingUnavailable(RuntimeError):
    """MLflow did not answer within the study's patience: the study stops with its state saved, to be resumed."""


@contextmanager
def fail_fast() -> Iterator[None]:
    """MLflow HTTP requests tried once, with a REQUEST_TIMEOUT_S timeout, inside (MLflow's default is 7 retries with
    backoff, minutes); a $MLFLOW_HTTP_REQUEST_MAX_RETRIES or $MLFLOW_HTTP_REQUEST_TIMEOUT the user set is kept."""
    added = {k: v for k, v in _FAIL_FAST.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def unanswered(error: BaseException) -> bool:
    """Whether `error` says MLflow did not answer (no connection, a timeout, 5xx, 408 or 429, a locked SQLite store)
    rather than that it refused the request."""
    import requests  # here, as MLflow below: the `study` command's help and checks need neither
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        status = error.get_http_status_code()
    elif isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
    else:
        return isinstance(error, requests.RequestException)
    return status >= 500 or status in (408, 429)


def reason(error: BaseException) -> str:
    """A short cause: "[Errno 111] Connection refused", "timed out", the innermost message of what urllib3 says caused
    it ("Remote end closed connection without response"), else the error's first line, cut at 200."""
    import requests

    text = str(error)
    found = _ERRNO.search(text)
    if found:
        return found.group(0).strip()
    if isinstance(error.__cause__, requests.Timeout) or "timeout exception" in text:
        return "timed out"
    quoted = _QUOTED.findall(text.rpartition("Caused by ")[2]) if "Caused by " in text else []
    return quoted[-1] if quoted else (text.splitlines() or [type(error).__name__])[0][:200]


class Outage:
    """Whether MLflow at `uri` answers, as the writes tried find it: says on the console when it stops and starts
    answering, counts the tries that failed and the writes that waited meanwhile, says when to try again, and waits
    up to `patience` seconds for a write that must be done before the study goes on."""

    def __init__(self, uri: str, echo: Callable[[str], None] = print, patience: float = DEFAULT_PATIENCE_S) -> None:
        self.uri, self.echo, self.patience = uri, echo, patience
        self.failed = self.waited = 0  # tries that failed, writes that waited: in the current outage
        self.since: float | None = None  # when the current outage began (time.monotonic), None while MLflow answers
        self.retry_at = 0.0  # no try before this (time.monotonic)
        self._wait = FIRST_WAIT_S

    def failure(self, error: BaseException) -> None:
        """Note a try that failed because MLflow did not answer; raise `error` if it failed for another reason."""
        if not unanswered(error):
            raise error
        now = time.monotonic()
        if self.since is None:
            self.since = now
            self.echo(f"MLflow at {self.uri} does not answer ({reason(error)}): writes wait and are retried")
        self.failed += 1
        self.retry_at, self._wait = now + self._wait, min(2 * self._wait, LONGEST_WAIT_S)

    def success(self) -> None:
        """Note a try that succeeded: the end of an outage, if there was one."""
        if self.since is not None:
            self.echo(f"MLflow at {self.uri} answers again after {time.monotonic() - self.since:.0f} s: "
                      f"{self.failed} tries had failed, {self.waited} writes had waited; all are written now")
        self.since, self.failed, self.waited, self.retry_at, self._wait = None, 0, 0, 0.0, FIRST_WAIT_S

    def patiently(self, write: Callable[[], T], *, writes: int = 1) -> T:
        """`write()`, tried again while MLflow does not answer, for up to `patience` seconds; TrackingUnavailable
        after. `write` (`writes` writes, counted as waiting if it fails) must be safe to repeat: a try that failed may
        have been half done."""
        patience = self.patience
        deadline, waiting = time.monotonic() + patience, False
        while True:
            try:
                with fail_fast():
                    value = write()
            except Exception as error:
                self.failure(error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TrackingUnavailable(f"MLflow at {self.uri} has not answered for {patience:g} s "
                                              f"({reason(error)})") from None
                if not waiting:
                    self.waited += writes
                    self.echo(f"waiting up to {patience:g} s for MLflow at {self.uri}")
                    waiting = True
                time.sleep(max(0.0, min(self.retry_at - time.monotonic(), left)))
            else:
                self.success()
                return value


def check_answers(key: str, uri: str) -> None:
    """A ConfigError unless the MLflow tracking server at `uri` (http or https) answers a read within seconds."""
    from mlflow.tracking import MlflowClient

    try:
        with fail_fast():
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as error:
        if unanswered(error):
            raise ConfigError(key, uri, f"an MLflow tracking server that answers; none does there ({reason(error)}): "
                              "start it, or set another tracking_uri") from None
        raise ConfigError(key, uri, f"an MLflow tracking server; what answers there refused a read ({reason(error)})"
                          ) from None

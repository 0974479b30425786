"""What the study takes for an MLflow that does not answer, against real sockets on 127.0.0.1: a refused connection, a
connection closed unanswered and 5xx are outages (retried); a 404 is a refusal (not retried). Patient writes wait for
MLflow to answer again, and stop after the patience."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from mlflow.tracking import MlflowClient

from study.outage import Outage, TrackingUnavailable, check_answers, fail_fast, reason, unanswered
from trainers.errors import ConfigError

NO_SERVER = "http://127.0.0.1:1"  # nothing listens on port 1: the connection is refused


@contextmanager
def serve(statuses: list[int]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers each request with the next of `statuses` (the last one repeated); 200
    with an empty experiment list."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # MLflow searches experiments with a POST
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            body = json.dumps({"experiments": []} if status == 200 else {}).encode() if status != 404 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            """No line on stderr per request."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def read_request(connection: socket.socket) -> None:
    """Read one HTTP request whole (its headers and a Content-Length body), so that closing the connection sends a
    plain end rather than a reset: a close with the body unread would be 'Connection reset by peer' to the client."""
    connection.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length[1]):
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk


@pytest.fixture
def closing_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts each connection and closes it without a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                read_request(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


def read_error(uri: str) -> Exception:
    """What a read of MLflow at `uri` raises, tried once."""
    with fail_fast():
        try:
            MlflowClient(uri).search_experiments(max_results=1)
        except Exception as error:
            return error
    raise AssertionError(f"{uri} answered")


def test_a_refused_connection_is_an_outage() -> None:
    error = read_error(NO_SERVER)
    assert unanswered(error) and reason(error) == "[Errno 111] Connection refused"


def test_a_connection_closed_unanswered_is_an_outage(closing_server: str) -> None:
    error = read_error(closing_server)
    assert unanswered(error) and reason(error) == "Remote end closed connection without response"


def test_5xx_is_an_outage_and_404_a_refusal() -> None:
    for status, outage in ((503, True), (500, True), (429, True), (404, False)):
        with serve([status]) as uri:
            assert unanswered(read_error(uri)) is outage, status


def test_check_answers_says_which() -> None:
    with pytest.raises(ConfigError, match=r"none does there \(\[Errno 111\] Connection refused\): start it"):
        check_answers("tracking_uri", NO_SERVER)
    with serve([404]) as uri:
        with pytest.raises(ConfigError, match="what answers there refused a read .*404"):
            check_answers("tracking_uri", uri)
    with serve([200]) as uri:
        check_answers("tracking_uri", uri)


def test_patient_write_waits_until_mlflow_answers_again() -> None:
    lines: list[str] = []
    with serve([503, 503, 200]) as uri:
        outage = Outage(uri, lines.append, patience=60)
        assert outage.patiently(lambda: MlflowClient(uri).search_experiments()) == []
    assert lines[0] == f"MLflow at {uri} does not answer (too many 503 error responses): writes wait and are retried"
    assert lines[1] == f"waiting up to 60 s for MLflow at {uri}"
    assert lines[2].startswith(f"MLflow at {uri} answers again after ")
    assert lines[2].endswith(": 2 tries had failed, 1 writes had waited; all are written now") and len(lines) == 3


def test_patient_write_stops_after_the_patience() -> None:
    outage = Outage(NO_SERVER, lambda line: None, patience=0)
    with pytest.raises(TrackingUnavailable, match=r"MLflow at http://127.0.0.1:1 has not answered for 0 s \(\[Errno"):
        outage.patiently(lambda: MlflowClient(NO_SERVER).search_experiments())
    with pytest.raises(ValueError):  # not an outage: raised at once
        outage.patiently(lambda: int("x"))


def test_fail_fast_sets_mlflow_http_settings_only_inside_and_keeps_the_users(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    with fail_fast():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "33"

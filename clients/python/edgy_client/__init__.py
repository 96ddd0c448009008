"""A small typed client of the Edgy API, sync (`Client`) and async (`AsyncClient`).

    from edgy_client import Client
    edgy = Client()                                  # EDGY_URL, EDGY_TOKEN
    task = edgy.submit(policy="python", input="print(6*7)", wait=10)
    print(task.status, task.exit_code, task.stdout)

Only the standard library: it runs wherever Python 3.9+ does. Every call maps to one operation of
the server's OpenAPI document (`OPERATIONS`); `tests/test_drift.py` fails when they part ways.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, AsyncIterator, Dict, Iterator, List, Mapping, Optional, Sequence, Union

__all__ = ["Client", "AsyncClient", "Task", "Event", "OutputFile", "EdgyError", "OPERATIONS", "TASK_FIELDS",
           "webhook_secret", "verify_webhook"]

#: (method, path) of every operation this client calls, as the OpenAPI document names them.
OPERATIONS = {
    "submit": ("post", "/v1/tasks"),
    "get": ("get", "/v1/tasks/{id}"),
    "list": ("get", "/v1/tasks"),
    "cancel": ("post", "/v1/tasks/{id}/cancel"),
    "delete": ("delete", "/v1/tasks/{id}"),
    "events": ("get", "/v1/tasks/{id}/events"),
    "stdout": ("get", "/v1/tasks/{id}/stdout"),
    "files": ("get", "/v1/tasks/{id}/files"),
    "file": ("get", "/v1/tasks/{id}/files/{path}"),
    "deliveries": ("get", "/v1/tasks/{id}/deliveries"),
}

#: The fields of a task (the `Task` schema) this client reads.
TASK_FIELDS = ("id", "name", "tenant", "policy", "status", "outcome", "exit_code", "stdout_base64", "stderr_base64",
               "attempts", "result", "created_at", "finished_at")

#: The request fields `submit` may send (the `CreateTask` schema).
SUBMIT_FIELDS = ("name", "policy", "input", "files", "command", "stdin_base64", "env", "limits", "max_attempts",
                 "dependencies", "outputs", "steps", "callback_url")

FINISHED = ("succeeded", "failed", "cancelled")


class EdgyError(Exception):
    """The server's error: HTTP status, and the body's `code`, `message` and `field`."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None):
        super().__init__(f"{status} {code}: {message}" + (f" ({field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field


@dataclasses.dataclass(frozen=True)
class Task:
    id: str
    name: str
    policy: str
    status: str
    outcome: Optional[str]
    exit_code: Optional[int]
    stdout: bytes
    stderr: bytes
    result: Optional[Dict[str, Any]]
    raw: Dict[str, Any] = dataclasses.field(repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def cases(self) -> Optional[Dict[str, Any]]:
        """A multi-step task's case summary (`total`, `passed`, `first_failure`, …)."""
        return (self.result or {}).get("cases")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Task":
        def data(key: str) -> bytes:
            text = body.get(key)
            return base64.b64decode(text) if text else b""
        return cls(id=body["id"], name=body["name"], policy=body["policy"], status=body["status"],
                   outcome=body.get("outcome"), exit_code=body.get("exit_code"), stdout=data("stdout_base64"),
                   stderr=data("stderr_base64"), result=body.get("result"), raw=dict(body))


@dataclasses.dataclass(frozen=True)
class Event:
    """One server-sent event: `status`, `stdout`, `stderr`, `step` or `case`."""
    id: int
    event: str
    data: str

    def json(self) -> Any:
        """The data of a `step` or `case` event."""
        return json.loads(self.data)


@dataclasses.dataclass(frozen=True)
class OutputFile:
    path: str
    size: int
    sha256: str
    mode: int


FileContent = Union[bytes, str]


class Client:
    """Blocking calls. `url` and `token` default to EDGY_URL (else http://127.0.0.1:8080) and EDGY_TOKEN."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 60.0):
        self.url = (url or os.environ.get("EDGY_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else os.environ.get("EDGY_TOKEN", "")
        self.timeout = timeout

    # -- tasks --------------------------------------------------------------------------------

    def submit(self, *, policy: Optional[str] = None, input: Optional[str] = None,
               files: Optional[Mapping[str, FileContent]] = None, command: Optional[Sequence[str]] = None,
               stdin: Optional[FileContent] = None, env: Optional[Mapping[str, str]] = None,
               limits: Optional[Mapping[str, Any]] = None, steps: Optional[Sequence[Mapping[str, Any]]] = None,
               outputs: Optional[Sequence[str]] = None, dependencies: Optional[Sequence[str]] = None,
               name: Optional[str] = None, max_attempts: Optional[int] = None, wait: Optional[float] = None,
               callback_url: Optional[str] = None) -> Task:
        """Creates a task; with `wait`, waits up to that many seconds (the server's cap is 60) for its end."""
        body: Dict[str, Any] = {}
        for key, value in (("name", name), ("policy", policy), ("input", input), ("env", env), ("limits", limits),
                           ("max_attempts", max_attempts), ("dependencies", dependencies), ("outputs", outputs),
                           ("callback_url", callback_url)):
            if value is not None:
                body[key] = dict(value) if isinstance(value, Mapping) else (list(value) if isinstance(value, (list, tuple)) else value)
        if command is not None:
            body["command"] = list(command)
        if steps is not None:
            body["steps"] = [dict(step) for step in steps]
        if stdin is not None:
            body["stdin_base64"] = base64.b64encode(_bytes(stdin)).decode()
        if files:
            body["files"] = [{"path": path, "content": base64.b64encode(_bytes(content)).decode(), "encoding": "base64"}
                             for path, content in files.items()]
        query = f"?wait={wait:g}" if wait is not None else ""
        return Task.from_json(self._json("POST", "/v1/tasks" + query, body))

    def get(self, task_id: str) -> Task:
        return Task.from_json(self._json("GET", f"/v1/tasks/{_seg(task_id)}"))

    def deliveries(self, task_id: str) -> Dict[str, Any]:
        """The task's webhook: callback_url, state (pending, delivered, failed), next_attempt_at, deliveries."""
        return self._json("GET", f"/v1/tasks/{_seg(task_id)}/deliveries")

    def list(self, status: Optional[str] = None, limit: int = 50) -> List[Task]:
        query = urllib.parse.urlencode({k: v for k, v in (("status", status), ("limit", limit)) if v is not None})
        return [Task.from_json(t) for t in self._json("GET", f"/v1/tasks?{query}")["tasks"]]

    def wait(self, task_id: str, timeout: float = 600.0) -> Task:
        """Returns the task once it has finished, following its events; TimeoutError past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if task.finished:
                return task
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"task {task_id} did not finish in {timeout:g} s")
            try:
                for event in self.logs(task_id, timeout=min(remaining, 30.0)):
                    if event.event == "status" and event.data in FINISHED:
                        break
            except (TimeoutError, OSError):
                pass  # read it again; the deadline decides

    def logs(self, task_id: str, after: int = 0, timeout: Optional[float] = None) -> Iterator[Event]:
        """The task's events after `after` (an event id): the stored ones, then new ones as they come,
        until the task's final status. `timeout` bounds each read, not the whole stream."""
        headers = {"Accept": "text/event-stream"}
        if after:
            headers["Last-Event-ID"] = str(after)
        response = self._open("GET", f"/v1/tasks/{_seg(task_id)}/events", headers=headers, timeout=timeout)
        with response:
            fields: Dict[str, List[str]] = {}
            for raw in response:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line:
                    key, _, value = line.partition(":")
                    fields.setdefault(key, []).append(value[1:] if value.startswith(" ") else value)
                    continue
                if "event" in fields:
                    yield Event(int(fields.get("id", ["0"])[-1]), fields["event"][-1], "\n".join(fields.get("data", [])))
                fields = {}

    def stdout(self, task_id: str) -> bytes:
        """The last attempt's exact stdout."""
        with self._open("GET", f"/v1/tasks/{_seg(task_id)}/stdout", headers={"Accept": "application/octet-stream"}) as r:
            return r.read()

    def cancel(self, task_id: str) -> Task:
        return Task.from_json(self._json("POST", f"/v1/tasks/{_seg(task_id)}/cancel"))

    def delete(self, task_id: str) -> None:
        self._open("DELETE", f"/v1/tasks/{_seg(task_id)}").close()

    # -- files ----------------------------------------------------------------------------------

    def files(self, task_id: str) -> List[OutputFile]:
        """The files the task's last attempt collected (`[outputs]`)."""
        body = self._json("GET", f"/v1/tasks/{_seg(task_id)}/files")
        return [OutputFile(f["path"], f["size"], f["sha256"], f["mode"]) for f in body["files"]]

    def file(self, task_id: str, path: str) -> bytes:
        quoted = "/".join(_seg(part) for part in path.split("/"))
        with self._open("GET", f"/v1/tasks/{_seg(task_id)}/files/{quoted}") as response:
            return response.read()

    # -- HTTP -----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        with self._open(method, path, data=data, headers=headers) as response:
            return json.loads(response.read() or b"null")

    def _open(self, method: str, path: str, data: Optional[bytes] = None, headers: Optional[Mapping[str, str]] = None,
              timeout: Optional[float] = None):
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=dict(headers or {}))
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                detail = json.loads(raw)["error"]
                raise EdgyError(error.code, detail.get("code", ""), detail.get("message", ""), detail.get("field")) from None
            except (ValueError, KeyError, TypeError):
                raise EdgyError(error.code, "http_error", raw.decode("utf-8", "replace")[:500]) from None


class AsyncClient:
    """The same calls as `Client`, as coroutines (each runs the blocking call on a worker thread)."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 60.0):
        self.sync = Client(url, token, timeout)

    async def submit(self, **kwargs: Any) -> Task:
        return await asyncio.to_thread(self.sync.submit, **kwargs)

    async def get(self, task_id: str) -> Task:
        return await asyncio.to_thread(self.sync.get, task_id)

    async def wait(self, task_id: str, timeout: float = 600.0) -> Task:
        return await asyncio.to_thread(self.sync.wait, task_id, timeout)

    async def cancel(self, task_id: str) -> Task:
        return await asyncio.to_thread(self.sync.cancel, task_id)

    async def delete(self, task_id: str) -> None:
        await asyncio.to_thread(self.sync.delete, task_id)

    async def files(self, task_id: str) -> List[OutputFile]:
        return await asyncio.to_thread(self.sync.files, task_id)

    async def file(self, task_id: str, path: str) -> bytes:
        return await asyncio.to_thread(self.sync.file, task_id, path)

    async def logs(self, task_id: str, after: int = 0) -> AsyncIterator[Event]:
        """Events as they come; the stream is read on a worker thread."""
        queue: "asyncio.Queue[Optional[Union[Event, BaseException]]]" = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def pump() -> None:
            try:
                for event in self.sync.logs(task_id, after=after):
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except BaseException as error:  # handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, error)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        reader = loop.run_in_executor(None, pump)
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
        await reader


def webhook_secret(token: str) -> str:
    """The key that signs the webhooks of the tasks `token` creates (what a receiver verifies with)."""
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    return hmac.new(token_hash.encode(), b"edgy-webhook-v1", hashlib.sha256).hexdigest()


def verify_webhook(secret: str, timestamp: str, body: bytes, signature: str, tolerance: float = 300,
                   now: Optional[float] = None) -> bool:
    """True when `signature` (the Edgy-Webhook-Signature header) signs `timestamp` (Edgy-Webhook-Timestamp)
    and the raw `body` under `secret`, and the timestamp is within `tolerance` seconds of `now`."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)


def _bytes(content: FileContent) -> bytes:
    return content.encode() if isinstance(content, str) else bytes(content)


def _seg(text: str) -> str:
    return urllib.parse.quote(text, safe="")

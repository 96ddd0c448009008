"""The web console in real headless Chromium, driven over the DevTools protocol.

Run by the Swift test `ConsoleTests`, which starts edgyd and sets EDGY_URL, EDGY_TOKEN (admin),
EDGY_CHROMIUM and EDGY_SCREENSHOTS (where each page's screenshot is kept, a CI artifact). Standard
library only: the DevTools WebSocket is spoken by the small client below. Every wait has a deadline.
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.request

URL = os.environ.get("EDGY_URL", "")
ADMIN = os.environ.get("EDGY_TOKEN", "")
CHROMIUM = os.environ.get("EDGY_CHROMIUM", "/usr/bin/chromium")
SHOTS = os.environ.get("EDGY_SCREENSHOTS", "screenshots")


def api(method, path, body=None, token=ADMIN):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(URL + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class DevTools:
    """A page's DevTools session over a WebSocket (RFC 6455: masked frames out, fragments joined in)."""

    def __init__(self, ws_url):
        host_port, path = ws_url[len("ws://"):].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("DevTools closed the handshake")
            answer += chunk
        if b" 101 " not in answer.split(b"\r\n", 1)[0]:
            raise RuntimeError("DevTools refused the WebSocket: " + answer.decode(errors="replace"))
        self.buffer = answer.split(b"\r\n\r\n", 1)[1]
        self.next_id = 0

    def _read(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("DevTools closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _message(self):
        payload = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload += self._read(length)
            if first & 0x80:
                return json.loads(payload)

    def send(self, method, **params):
        self.next_id += 1
        message = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        header = bytes([0x81])
        if len(message) < 126:
            header += bytes([0x80 | len(message)])
        elif len(message) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(message))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(message))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(message)))
        while True:
            answer = self._message()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]


class ConsoleTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.profile = tempfile.mkdtemp(prefix="edgy-chromium-")
        cls.browser = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", f"--user-data-dir={cls.profile}",
             "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(cls.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.time() > deadline or cls.browser.poll() is not None:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        cls.page = DevTools(next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"])
        cls.page.send("Page.enable")
        os.makedirs(SHOTS, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.browser.terminate()
        try:
            cls.browser.wait(10)
        except subprocess.TimeoutExpired:
            cls.browser.kill()
        shutil.rmtree(cls.profile, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------

    def js(self, expression):
        result = self.page.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, seconds=20, what=None):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        self.shot("timeout")
        self.fail(f"waited {seconds} s for {what or expression}; the page says: {self.js('document.body.innerText')[:2000]}")

    def go(self, hash_part):
        self.js(f"location.hash = {json.dumps(hash_part)}")

    def shot(self, name):
        data = self.page.send("Page.captureScreenshot", format="png")["data"]
        with open(os.path.join(SHOTS, name + ".png"), "wb") as f:
            f.write(base64.b64decode(data))

    def sign_in(self, token):
        self.page.send("Page.navigate", url=URL + "/ui")
        self.wait_for("document.readyState === 'complete' && document.querySelector('#main') !== null")
        self.js("sessionStorage.clear(); location.hash = '#/'; null")
        self.page.send("Page.reload")
        self.wait_for("document.querySelector('[data-testid=sign-in]') !== null", what="the sign-in form")
        self.assertEqual(self.js("document.activeElement && document.activeElement.id"), "token", "the token field has focus")
        self.js(f"document.getElementById('token').value = {json.dumps(token)}; "
                "document.querySelector('[data-testid=sign-in]').requestSubmit(); null")
        self.wait_for("document.querySelector('[data-testid=tasks]') !== null", what="the task list")

    # -- tests ------------------------------------------------------------------------------

    def test_1_signing_in_keeps_the_token_in_session_storage_only(self):
        self.sign_in(ADMIN)
        self.shot("tasks")
        self.assertEqual(self.js("sessionStorage.getItem('edgy-token')"), ADMIN)
        self.assertEqual(self.js("localStorage.length"), 0)
        self.assertEqual(self.js("document.cookie"), "")
        self.assertFalse(self.js("document.getElementById('nav').hidden"))

    def test_2_a_submitted_tasks_output_appears_live(self):
        self.sign_in(ADMIN)
        task = api("POST", "/v1/tasks", {"policy": "sh", "name": "console-live",
                                         "input": "echo first; sleep 3; echo second; echo oops >&2"})
        # The list shows it, with a live status.
        self.go("#/tasks")
        self.wait_for(f"document.querySelector('[data-task=\"{task['id']}\"]') !== null", what="the task in the list")
        self.go("#/tasks/" + task["id"])
        # "first" is on the page while the task still runs: streamed, not read at the end.
        seen_live = self.wait_for(
            "(() => { const out = document.querySelector('[data-testid=stdout]'); const status = document.querySelector('[data-testid=status]');"
            " return out && out.textContent.includes('first') && status.textContent === 'running'; })()",
            seconds=20, what="stdout 'first' while running")
        self.assertTrue(seen_live)
        self.shot("task-running")
        self.wait_for("document.querySelector('[data-testid=status]').textContent === 'succeeded'", seconds=30, what="the end")
        self.assertEqual(self.js("document.querySelector('[data-testid=stdout]').textContent"), "first\nsecond\n")
        self.assertEqual(self.js("document.querySelector('[data-testid=stderr]').textContent"), "oops\n")
        self.wait_for("document.querySelector('[data-testid=result]') !== null", what="the result")
        self.assertIn("exited", self.js("document.querySelector('[data-testid=result]').textContent"))
        self.shot("task-finished")

    def test_3_policies_workers_and_audit_render(self):
        self.sign_in(ADMIN)
        self.go("#/policies")
        self.wait_for("document.querySelector('[data-testid=policies]') !== null")
        self.assertIn("python", self.js("document.querySelector('[data-testid=policies]').textContent"))
        self.shot("policies")
        self.go("#/policies/python")
        self.wait_for("document.querySelector('[data-testid=digest]') !== null")
        self.assertEqual(self.js("document.querySelector('[data-testid=digest]').textContent"), api("GET", "/v1/policies/python")["digest"])
        self.assertIn("[seccomp]", self.js("document.querySelector('[data-testid=toml]').textContent"))
        self.shot("policy")
        self.go("#/workers")
        self.wait_for("document.querySelectorAll('[data-testid=workers] tbody tr').length > 0", what="a worker row")
        self.shot("workers")
        self.go("#/audit")
        self.wait_for("document.querySelectorAll('[data-testid=audit] tbody tr').length > 0", what="audit rows")
        self.assertIn("task.create", self.js("document.querySelector('[data-testid=audit]').textContent"))
        self.shot("audit")

    def test_4_a_reader_sees_neither_another_tenants_task_nor_the_admin_pages(self):
        task = api("POST", "/v1/tasks", {"policy": "sh", "name": "secret-of-default", "input": "echo hidden"})
        reader = api("POST", "/v1/tokens", {"name": "console-reader", "role": "reader", "tenant": "other"})["token"]
        self.sign_in(reader)
        self.assertNotIn("secret-of-default", self.js("document.querySelector('[data-testid=tasks]').textContent"))
        self.go("#/tasks/" + task["id"])
        error = self.wait_for("(document.querySelector('[data-testid=error]') || {}).textContent", what="an error")
        self.assertIn("404", error)
        self.assertNotIn("hidden", self.js("document.body.innerText"))
        self.shot("reader-task")
        self.go("#/audit")
        error = self.wait_for("(document.querySelector('[data-testid=error]') || {}).textContent", what="a refusal")
        self.assertIn("403", error)
        self.shot("reader-audit")

    def test_6_a_task_submitted_from_the_console_runs_and_shows_its_output(self):
        self.sign_in(ADMIN)
        self.js("document.querySelector('[data-testid=new-task]').closest('details').open = true; null")
        self.wait_for("[...document.querySelectorAll('#new-policy option')].some((o) => o.value === 'sh')", what="the policy choices")
        self.js("document.getElementById('new-policy').value = 'sh'; "
                "document.getElementById('new-input').value = 'read line; echo \"from-console $line\"'; "
                "document.getElementById('new-stdin').value = 'typed\\n'; "
                "document.querySelector('[data-testid=new-task]').requestSubmit(); null")
        self.wait_for("location.hash.startsWith('#/tasks/') && document.querySelector('[data-testid=stdout]') !== null", what="the new task's page")
        self.wait_for("document.querySelector('[data-testid=status]').textContent === 'succeeded'", seconds=30, what="the end")
        self.assertEqual(self.js("document.querySelector('[data-testid=stdout]').textContent"), "from-console typed\n")
        self.shot("new-task")

    def test_5_signing_out_forgets_the_token(self):
        self.sign_in(ADMIN)
        self.js("document.getElementById('sign-out').click(); null")
        self.wait_for("document.querySelector('[data-testid=sign-in]') !== null", what="the sign-in form")
        self.assertIsNone(self.js("sessionStorage.getItem('edgy-token')"))
        self.assertTrue(self.js("document.getElementById('nav').hidden"))


if __name__ == "__main__":
    unittest.main(verbosity=2)

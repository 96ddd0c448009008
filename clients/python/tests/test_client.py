"""The client against a real edgyd: EDGY_URL and EDGY_TOKEN name it (the Swift test
`PythonClientTests` starts one and runs these)."""
import asyncio
import os
import unittest

from edgy_client import AsyncClient, Client, EdgyError, verify_webhook, webhook_secret


class WebhookHelperTests(unittest.TestCase):
    """The documented recipe, on fixed vectors (the Swift tests check the server signs the same way)."""

    def test_the_secret_and_signature_follow_the_recipe(self):
        self.assertEqual(webhook_secret("edgy_example"), "b24c8535c14560c02479d8dd17c531378c053649821258e5cc83e0b9cd85ad18")
        signature = "v1=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146"
        self.assertTrue(verify_webhook("k", "1700000000", b"{}", signature, now=1700000010))
        self.assertFalse(verify_webhook("k", "1700000000", b"{} ", signature, now=1700000010))
        self.assertFalse(verify_webhook("k", "1700000000", b"{}", signature, now=1700001000), "too old")
        self.assertFalse(verify_webhook("k", "soon", b"{}", signature))


@unittest.skipUnless(os.environ.get("EDGY_URL"), "needs a running edgyd (EDGY_URL, EDGY_TOKEN)")
class ClientTests(unittest.TestCase):
    def setUp(self):
        self.edgy = Client(timeout=60)

    def test_submit_and_wait_returns_the_output_and_exit_code(self):
        task = self.edgy.submit(policy="python", input="import sys\nprint(6*7)\nsys.exit(3)", wait=30)
        self.assertEqual(task.status, "failed")
        self.assertEqual(task.exit_code, 3)
        self.assertEqual(task.stdout, b"42\n")
        self.assertEqual(self.edgy.stdout(task.id), b"42\n")

    def test_files_stdin_and_binary_output_round_trip(self):
        task = self.edgy.submit(policy="python", files={"main.py": "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])",
                                                         "data.bin": bytes(range(256))},
                                stdin=b"\x00\x01\xff", wait=30)
        self.assertEqual(task.status, "succeeded", task.raw)
        self.assertEqual(task.stdout, b"\xff\x01\x00")

    def test_wait_and_logs_follow_a_task_to_its_end(self):
        task = self.edgy.submit(policy="sh", input="echo one; sleep 0.3; echo two >&2")
        finished = self.edgy.wait(task.id, timeout=60)
        self.assertEqual(finished.status, "succeeded")
        events = list(self.edgy.logs(task.id))
        self.assertEqual([e.data for e in events if e.event == "status"][-1], "succeeded")
        self.assertEqual("".join(e.data for e in events if e.event == "stdout"), "one\n")
        self.assertEqual("".join(e.data for e in events if e.event == "stderr"), "two\n")

    def test_output_files_are_listed_and_fetched(self):
        program = "import os\nos.makedirs('out', exist_ok=True)\nopen('out/r.txt', 'w').write('result')"
        task = self.edgy.submit(policy="python", input=program, wait=30)
        files = self.edgy.files(task.id)
        self.assertEqual([f.path for f in files], ["out/r.txt"])
        self.assertEqual(self.edgy.file(task.id, "out/r.txt"), b"result")

    def test_steps_and_cases_come_back_with_a_summary(self):
        task = self.edgy.submit(policy="python", input="print(int(input()) * 2)", wait=30, steps=[
            {"name": "run", "cases": [{"stdin": "2", "expected_stdout": "4\n"}, {"stdin": "5", "expected_stdout": "11\n"}]}])
        self.assertEqual(task.status, "failed")
        self.assertEqual(task.cases["passed"], 1)
        self.assertEqual(task.cases["first_failure"]["verdict"], "wrong_answer")

    def test_cancel_stops_a_running_task(self):
        task = self.edgy.submit(policy="sh", input="sleep 1000")
        for _ in range(200):
            if self.edgy.get(task.id).status == "running":
                break
            asyncio.run(asyncio.sleep(0.05))
        self.edgy.cancel(task.id)
        self.assertEqual(self.edgy.wait(task.id, timeout=30).status, "cancelled")
        self.edgy.delete(task.id)
        with self.assertRaises(EdgyError) as caught:
            self.edgy.get(task.id)
        self.assertEqual(caught.exception.status, 404)

    def test_errors_carry_the_status_code_and_field(self):
        with self.assertRaises(EdgyError) as caught:
            self.edgy.submit(policy="python", input="", steps=[{"name": "a", "cases": [{"expected_stdout": "(", "comparator": "regex"}]}])
        self.assertEqual(caught.exception.status, 400)
        self.assertEqual(caught.exception.field, "steps[0].cases[0].expected_stdout")
        with self.assertRaises(EdgyError) as caught:
            Client(token="edgy_not_a_token").get("00000000-0000-0000-0000-000000000000")
        self.assertEqual(caught.exception.status, 401)
        with self.assertRaises(EdgyError) as caught:
            self.edgy.submit(policy="python", input="print(1)", callback_url="http://169.254.169.254/latest")
        self.assertEqual((caught.exception.status, caught.exception.field), (400, "callback_url"))
        task = self.edgy.submit(policy="python", input="print(1)")
        with self.assertRaises(EdgyError) as caught:
            self.edgy.deliveries(task.id)
        self.assertEqual((caught.exception.status, caught.exception.code), (404, "no_webhook"))

    def test_the_async_client_does_the_same(self):
        async def run():
            edgy = AsyncClient()
            task = await edgy.submit(policy="sh", input="echo async")
            finished = await edgy.wait(task.id, timeout=60)
            events = [event async for event in edgy.logs(task.id)]
            return finished, events
        finished, events = asyncio.run(run())
        self.assertEqual(finished.stdout, b"async\n")
        self.assertEqual(events[-1].event, "status")


if __name__ == "__main__":
    unittest.main()

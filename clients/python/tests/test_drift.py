"""The client and the server's OpenAPI document must agree: every operation the client calls
exists with that method, every field it sends is in `CreateTask`, every field it reads is in
`Task`. The document comes from EDGY_OPENAPI (a file) or the running server."""
import json
import os
import unittest
import urllib.request

import edgy_client


def document():
    path = os.environ.get("EDGY_OPENAPI")
    if path:
        with open(path) as f:
            return json.load(f)
    url = os.environ.get("EDGY_URL")
    if not url:
        raise unittest.SkipTest("needs EDGY_OPENAPI or EDGY_URL")
    request = urllib.request.Request(url.rstrip("/") + "/openapi.json")
    if os.environ.get("EDGY_TOKEN"):
        request.add_header("Authorization", "Bearer " + os.environ["EDGY_TOKEN"])
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


class DriftTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.doc = document()

    def test_every_operation_the_client_calls_is_in_the_document(self):
        for name, (method, path) in edgy_client.OPERATIONS.items():
            with self.subTest(name):
                self.assertIn(path, self.doc["paths"], f"{name}: {path} is not in the document")
                self.assertIn(method, self.doc["paths"][path], f"{name}: {method.upper()} {path} is not in the document")

    def test_every_field_the_client_sends_is_in_create_task(self):
        properties = self.doc["components"]["schemas"]["CreateTask"]["properties"]
        for field in edgy_client.SUBMIT_FIELDS:
            self.assertIn(field, properties, f"submit sends {field}, which CreateTask does not have")

    def test_every_field_the_client_reads_is_in_task(self):
        properties = self.doc["components"]["schemas"]["Task"]["properties"]
        for field in edgy_client.TASK_FIELDS:
            self.assertIn(field, properties, f"Task.from_json reads {field}, which the Task schema does not have")

    def test_the_event_kinds_the_client_knows_are_the_documents(self):
        stream = self.doc["paths"]["/v1/tasks/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
        kinds = stream["schema"]["properties"]["event"]["enum"]
        self.assertEqual(sorted(kinds), sorted(["status", "stdout", "stderr", "step", "case"]))


if __name__ == "__main__":
    unittest.main()

"""Runs the independent SCIM 2.0 conformance checker (PyPI scim2-tester) against a running
Mandate directory and fails on any error.

    SCIM_BASE_URL=http://127.0.0.1:3000/scim/v2/<directory_id> SCIM_TOKEN=mnd_scim_... \
        python tests/scim/conformance.py
"""

import os
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base_url = os.environ["SCIM_BASE_URL"]
    token = os.environ["SCIM_TOKEN"]
    http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    # No models given: the checker discovers the server from its own discovery endpoints.
    results = check_server(SyncSCIMClient(http))

    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    passed = [r for r in results if r.status == Status.SUCCESS]
    for result in results:
        line = f"{result.status.name:8} {result.resource_type or '-':6} {result.title}"
        if result.status != Status.SUCCESS and result.reason:
            line += f": {result.reason}"
        print(line)
    tested = {r.resource_type for r in passed if r.resource_type}
    print(f"\nscim2-tester: {len(results)} checks, {len(passed)} passed, {len(failed)} failed, resource types exercised: {sorted(tested)}")
    if failed:
        return 1
    # Guard against a vacuous pass (discovery broken so nothing else ran).
    if not {"User", "Group"} <= tested or len(passed) < 40:
        print("the checker did not exercise both Users and Groups: treating as a failure")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

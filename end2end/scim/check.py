"""Checks a running Chancery's SCIM 2.0 service against RFC 7643/7644 with
scim2-tester: discovery, then create, read, list, replace, PATCH (add,
replace, remove) and delete of Users and Groups.

Usage: check.py BASE_URL  (the token in the SCIM_TOKEN environment variable)
Prints one line per check; exits 1 if any check failed.
"""

import os
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base_url = sys.argv[1].rstrip("/") + "/scim/v2"
    token = os.environ["SCIM_TOKEN"]
    http = httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = check_server(SyncSCIMClient(http))
    failed = 0
    counts: dict[str, int] = {}
    for result in results:
        status = result.status.name
        counts[status] = counts.get(status, 0) + 1
        resource = f" [{result.resource_type}]" if result.resource_type else ""
        print(f"{status:8} {result.title}{resource}: {result.reason or ''}".rstrip())
        if result.status in (Status.ERROR, Status.CRITICAL):
            failed += 1
    summary = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    print(f"scim2-tester: {summary}")
    return 1 if failed or not counts.get("SUCCESS") else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Ganeti's own Python RAPI client (Debian python3-ganeti-rapi) fetching what the
operator's observe fetches: cluster info, and every node and instance in bulk.

Usage: python_observe.py ITERATIONS   (connection settings from the sandbox env)
Prints one line of JSON: {"seconds": [per-iteration wall times]}.
"""
import json
import os
import sys
import time
import urllib.parse

from ganeti.rapi import client

url = urllib.parse.urlparse(os.environ["GANETI_RAPI_URL"])
with open(os.environ["GANETI_RAPI_PASSWORD_FILE"]) as f:
    password = f.read().strip()
rapi = client.GanetiRapiClient(
    url.hostname,
    url.port or 5080,
    username=os.environ["GANETI_RAPI_USER"],
    password=password,
    curl_config_fn=client.GenericCurlConfig(
        cafile=os.environ["GANETI_SANDBOX_CA_FILE"], verify_hostname=True
    ),
)
seconds = []
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    rapi.GetInfo()
    rapi.GetInstances(bulk=True)
    rapi.GetNodes(bulk=True)
    seconds.append(time.perf_counter() - started)
print(json.dumps({"seconds": seconds}))

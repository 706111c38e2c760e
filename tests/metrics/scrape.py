"""Scrape an eddy /metrics endpoint and parse it with the Prometheus project's Python
client, so the exposition is checked by a parser nobody on the team wrote.

usage: scrape.py URL [openmetrics]
Prints one JSON object per sample: family, type, name, labels, value.
With `openmetrics`, asks for OpenMetrics and parses with the strict OpenMetrics parser.
"""
import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
openmetrics = len(sys.argv) > 2 and sys.argv[2] == "openmetrics"
request = urllib.request.Request(url)
if openmetrics:
    request.add_header("Accept", "application/openmetrics-text; version=1.0.0")
with urllib.request.urlopen(request, timeout=10) as response:
    content_type = response.headers.get("Content-Type", "")
    body = response.read().decode()
if openmetrics:
    assert content_type.startswith("application/openmetrics-text"), content_type
    families = openmetrics_families(body)
else:
    assert content_type.startswith("text/plain; version=0.0.4"), content_type
    families = text_string_to_metric_families(body)
for family in families:
    for s in family.samples:
        print(json.dumps({
            "family": family.name,
            "type": family.type,
            "name": s.name,
            "labels": s.labels,
            "value": s.value,
        }))

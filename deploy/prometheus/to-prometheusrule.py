#!/usr/bin/env python3
"""Writes deploy/kubernetes/prometheusrule.yaml (Prometheus operator) from vigil-rules.yaml.

The rules have one source, vigil-rules.yaml (promtool-tested); run this after changing it:
    python3 deploy/prometheus/to-prometheusrule.py
The unit test deploy_consistency fails while the two differ.
"""
from pathlib import Path

import yaml

here = Path(__file__).resolve().parent
rules = yaml.safe_load((here / "vigil-rules.yaml").read_text())
resource = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "vigil", "labels": {"app.kubernetes.io/name": "vigil"}},
    "spec": {"groups": rules["groups"]},
}
header = ("# GENERATED from deploy/prometheus/vigil-rules.yaml by deploy/prometheus/to-prometheusrule.py:\n"
          "# edit the rules there (they are unit-tested with promtool), then regenerate.\n")
out = here.parent / "kubernetes" / "prometheusrule.yaml"
out.write_text(header + yaml.safe_dump(resource, sort_keys=False, width=120))
print(f"wrote {out}")

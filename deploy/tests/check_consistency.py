#!/usr/bin/env python3
"""Unit test (CTest deploy_consistency): the deployment artefacts agree with the service.

The Kubernetes manifests, the systemd unit and the container file set configuration keys,
environment variables, ports, paths and flags. The service ignores a VIGIL_* variable whose name
matches no key, so a typo there would silently deploy defaults: every name is checked against
what `vigil run --print-config` reports, by running the real binary with the artefact's own
environment. Also: probes, ports and selectors line up; grace periods exceed the shutdown budget;
the container's build packages are deploy/local/setup.sh's and its runtime packages are the ones
the built binary links; the alerting rules and the dashboard use only metrics the service exports.

Usage: check_consistency.py <vigil binary> <source root>     (exit 1 with every problem listed)
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

VIGIL = Path(sys.argv[1])
ROOT = Path(sys.argv[2])
DEPLOY = ROOT / "deploy"
BASE_CONFIG = DEPLOY / "local" / "vigil.yaml"
# Map-valued sections: free-form keys after a double underscore (service_config.h).
MAP_PREFIXES = ("VIGIL_KAFKA_PROPERTIES__", "VIGIL_KAFKA_CONSUMER_PROPERTIES__",
                "VIGIL_KAFKA_PRODUCER_PROPERTIES__", "VIGIL_ANALYSIS_OPERATORS__")
TELEMETRY_PARTITIONS = 12
SHUTDOWN_HARD_LIMIT_S = 10  # the service must exit within 10 s of SIGTERM

problems = []
checks = 0


def check(ok, message):
    global checks
    checks += 1
    if not ok:
        problems.append(message)
    return ok


def print_config(env, config=BASE_CONFIG):
    """Runs `vigil run --config <config> --print-config` with only `env` (plus PATH); returns
    (exit code, {key: value}, {env name: key}, output)."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    r = subprocess.run([str(VIGIL), "run", "--config", str(config), "--print-config"],
                       env=clean, capture_output=True, text=True, timeout=30)
    values, names = {}, {}
    for line in r.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2:
            values[parts[0]] = parts[2].strip() if len(parts) == 3 else ""
            names[parts[1]] = parts[0]
    return r.returncode, values, names, r.stdout + r.stderr


def check_environment(where, env):
    """Every VIGIL_* variable of an artefact is one the service reads; with all of them set the
    configuration loads. `env` maps names to values (or None for values from secrets and the
    downward API). *_FILE values are replaced by a temporary file, so the file mechanism runs."""
    with tempfile.TemporaryDirectory() as tmp:
        resolved = {}
        for name, value in env.items():
            if name.endswith("_FILE"):
                secret = Path(tmp) / name
                secret.write_text("dummy-secret\n")
                resolved[name] = str(secret)
            elif value is None or "%" in value:
                resolved[name] = "probe-0"
            elif name.endswith("__SSL__CA__LOCATION"):
                resolved[name] = "/etc/ssl/certs/ca-certificates.crt"  # exists; librdkafka checks late
            else:
                resolved[name] = value
        code, values, names, output = print_config(resolved)
    if not check(code == 0, f"{where}: vigil run --print-config fails with its environment:\n{output}"):
        return {}
    for name in env:
        check(name.startswith("VIGIL_"), f"{where}: {name} is not a VIGIL_* variable")
        known = name in names or (name.endswith("_FILE") and name[: -len("_FILE")] in names)
        check(known, f"{where}: the service does not read {name} (typo? it would be ignored silently)")
    if "VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE" in env:
        check(values.get("kafka.properties.sasl.password") == "<redacted>",
              f"{where}: the password file did not become a redacted sasl.password")
        check("dummy-secret" not in output, f"{where}: --print-config printed the secret")
    return values


def env_of(container):
    env = {}
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def load_all(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# --- the service itself -------------------------------------------------------------------------
code, defaults, default_names, output = print_config({})
check(code == 0, f"deploy/local/vigil.yaml does not load:\n{output}")
run_help = subprocess.run([str(VIGIL), "run", "--help"], capture_output=True, text=True).stdout
check("--config" in run_help, "vigil run has no --config flag")

# --- Kubernetes (kustomize) ---------------------------------------------------------------------
kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
docs = []
for resource in kustomization["resources"]:
    path = DEPLOY / resource
    if check(path.is_file(), f"kustomization: resource {resource} missing"):
        docs += load_all(path)
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
for kind in ("Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"):
    check(len(by_kind.get(kind, [])) == 1, f"kubernetes: expected one {kind}")

generators = {g["name"]: g for g in kustomization.get("configMapGenerator", [])}
config_files = generators.get("vigil-config", {}).get("files", [])
check(any(f.split("=", 1)[-1] == "local/vigil.yaml" for f in config_files),
      "kustomization: ConfigMap vigil-config is not generated from local/vigil.yaml")
config_key = next((f.split("=", 1)[0] for f in config_files if "=" in f), "vigil.yaml")

deployment = by_kind["Deployment"][0]
pod = deployment["spec"]["template"]["spec"]
pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
container = next(c for c in pod["containers"] if c["name"] == "vigil")
k8s = check_environment("kubernetes/deployment.yaml", env_of(container))

replicas = deployment["spec"].get("replicas", 1)
check(1 <= replicas <= TELEMETRY_PARTITIONS,
      f"kubernetes: replicas {replicas} outside 1..{TELEMETRY_PARTITIONS} (partitions)")
check(all(deployment["spec"]["selector"]["matchLabels"].get(k) == v
          for k, v in deployment["spec"]["selector"]["matchLabels"].items()
          if True) and all(pod_labels.get(k) == v for k, v in deployment["spec"]["selector"]["matchLabels"].items()),
      "kubernetes: Deployment selector does not match its pod labels")

# The config flag points at the ConfigMap's file.
mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
config_volume = next((n for n, v in volumes.items() if v.get("configMap", {}).get("name") == "vigil-config"), None)
args = container.get("args", [])
if check(config_volume in mounts, "kubernetes: ConfigMap vigil-config is not mounted"):
    expected = f"{mounts[config_volume]['mountPath'].rstrip('/')}/{config_key}"
    check(args == ["run", "--config", expected], f"kubernetes: args {args} != ['run', '--config', '{expected}']")

# Secrets: password as a file from the Secret's volume, names consistent with the example Secret.
secret_example = yaml.safe_load((DEPLOY / "kubernetes" / "secret.example.yaml").read_text())
secret_name = secret_example["metadata"]["name"]
secret_keys = set(secret_example["stringData"])
for item in container.get("env", []):
    ref = item.get("valueFrom", {}).get("secretKeyRef")
    if ref:
        check(ref["name"] == secret_name and ref["key"] in secret_keys,
              f"kubernetes: {item['name']} refers to {ref['name']}/{ref['key']}, not in secret.example.yaml")
secret_volume = next((n for n, v in volumes.items() if v.get("secret", {}).get("secretName") == secret_name), None)
password_file = env_of(container).get("VIGIL_KAFKA_PROPERTIES__SASL__PASSWORD_FILE")
if check(secret_volume in mounts and password_file, "kubernetes: the Kafka password is not a file from the Secret"):
    items = {i["path"]: i["key"] for i in volumes[secret_volume]["secret"].get("items", [])}
    rel = os.path.relpath(password_file, mounts[secret_volume]["mountPath"])
    check(rel in items and items[rel] in secret_keys, f"kubernetes: {password_file} is not a key of the Secret volume")
for item in container.get("env", []):
    check(not (item["name"].endswith("PASSWORD") and "value" in item),
          f"kubernetes: {item['name']} has a literal value; secrets come from files or Secrets")

# Ports and probes.
ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
if k8s:
    check(ports.get("metrics") == int(k8s["metrics.port"]),
          f"kubernetes: containerPort metrics {ports.get('metrics')} != metrics.port {k8s['metrics.port']}")
    check(ports.get("health") == int(k8s["metrics.health_port"]),
          f"kubernetes: containerPort health {ports.get('health')} != metrics.health_port {k8s['metrics.health_port']}")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = container.get(probe, {}).get("httpGet", {})
    port = get.get("port")
    port = ports.get(port, port)
    check(get.get("path") == path and k8s and port == int(k8s["metrics.health_port"]),
          f"kubernetes: {probe} is not GET {path} on the health port")

# Shutdown: the grace period covers the service's budget with margin.
grace = pod.get("terminationGracePeriodSeconds", 30)
if k8s:
    shutdown_s = int(k8s["limits.shutdown_timeout_ms"]) / 1000
    check(shutdown_s <= SHUTDOWN_HARD_LIMIT_S, f"limits.shutdown_timeout_ms {shutdown_s} s > {SHUTDOWN_HARD_LIMIT_S} s")
    check(grace >= max(shutdown_s, SHUTDOWN_HARD_LIMIT_S) + 10,
          f"kubernetes: terminationGracePeriodSeconds {grace} is not > the shutdown budget + 10 s")
    # Threads follow the CPU request (0 would mean every core of the node).
    cpu = str(container["resources"]["requests"]["cpu"])
    cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    threads = int(k8s["limits.threads"])
    check(1 <= threads <= max(1, round(cores)), f"kubernetes: limits.threads {threads} does not follow cpu request {cpu}")
check("memory" in container["resources"].get("limits", {}), "kubernetes: no memory limit")

# PDB, Service and ServiceMonitor select the right things.
pdb = by_kind["PodDisruptionBudget"][0]
check(all(pod_labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
      "kubernetes: the PodDisruptionBudget selects no Vigil pod")
service = by_kind["Service"][0]
check(all(pod_labels.get(k) == v for k, v in service["spec"]["selector"].items()),
      "kubernetes: the metrics Service selects no Vigil pod")
service_port = next((p for p in service["spec"]["ports"] if p["name"] == "metrics"), None)
if check(service_port is not None, "kubernetes: the Service has no port named metrics"):
    target = service_port.get("targetPort")
    check(ports.get(target, target) == ports.get("metrics"), "kubernetes: Service targetPort is not the metrics port")
monitor = by_kind["ServiceMonitor"][0]
check(all(service["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items()),
      "kubernetes: the ServiceMonitor selects no metrics Service")
check([e.get("port") for e in monitor["spec"]["endpoints"]] == ["metrics"] and
      all(e.get("path", "/metrics") == "/metrics" for e in monitor["spec"]["endpoints"]),
      "kubernetes: ServiceMonitor endpoint is not port metrics, /metrics")
job_label = monitor["spec"].get("jobLabel")
check(job_label and service["metadata"]["labels"].get(job_label) == "vigil",
      "kubernetes: the scrape job would not be called 'vigil' (the alerting rules select job=\"vigil\")")

# The PrometheusRule carries exactly the promtool-tested rules.
prometheus_rule = by_kind.get("PrometheusRule", [None])[0]
rules_source = yaml.safe_load((DEPLOY / "prometheus" / "vigil-rules.yaml").read_text())
check(prometheus_rule is not None and prometheus_rule["spec"]["groups"] == rules_source["groups"],
      "kubernetes/prometheusrule.yaml differs from prometheus/vigil-rules.yaml: run deploy/prometheus/to-prometheusrule.py")

# --- systemd --------------------------------------------------------------------------------------
unit_text = (DEPLOY / "systemd" / "vigil.service").read_text()
unit = {}
for line in unit_text.splitlines():
    if "=" in line and not line.startswith(("#", "[")):
        key, value = line.split("=", 1)
        unit.setdefault(key.strip(), []).append(value.strip())
exec_start = shlex.split(unit["ExecStart"][0])
check(exec_start[1:] == ["run", "--config", "/etc/vigil/vigil.yaml"], f"systemd: ExecStart {exec_start}")
unit_env = {}
for value in unit.get("Environment", []):
    for assignment in shlex.split(value):
        name, val = assignment.split("=", 1)
        unit_env[name] = val
for line in (DEPLOY / "systemd" / "vigil.env.example").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        name, val = line.split("=", 1)
        unit_env[name] = val
systemd = check_environment("systemd (vigil.service + vigil.env.example)", unit_env)
check(unit.get("Restart") == ["on-failure"], "systemd: Restart is not on-failure")
check(unit.get("EnvironmentFile"), "systemd: no EnvironmentFile")
if systemd:
    stop = int(unit.get("TimeoutStopSec", ["90"])[0])
    check(stop >= SHUTDOWN_HARD_LIMIT_S + 10, f"systemd: TimeoutStopSec {stop} is not > the shutdown budget + 10 s")
    threads = int(systemd["limits.threads"])
    check(threads > 0, "systemd: limits.threads 0 means every core of the host; set it")
for option in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "DynamicUser", "CapabilityBoundingSet"):
    check(option in unit, f"systemd: hardening option {option} missing")
if shutil.which("systemd-analyze"):
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "vigil.service"
        copy.write_text(unit_text.replace(exec_start[0], str(VIGIL.resolve())))
        r = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
        check(r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify: {r.stdout}{r.stderr}")
else:
    print("note: systemd-analyze not installed; the unit's syntax was not verified")

# --- container file ------------------------------------------------------------------------------
containerfile = (DEPLOY / "container" / "Containerfile").read_text()
joined = re.sub(r"\\\n\s*", " ", containerfile)
stages = re.split(r"^FROM ", joined, flags=re.M)[1:]
check(len(stages) == 2 and all(s.startswith("docker.io/library/debian:12") for s in stages),
      "container: expected a Debian 12 build stage and a Debian 12 runtime stage")
check("deploy/local/setup.sh --build-only" in stages[0], "container: the build stage does not run setup.sh --build-only")
check(re.search(r"cmake -S \. -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo", stages[0]) is not None,
      "container: the build stage does not configure like the README (cmake -S . -B build -G Ninja ...)")
runtime_install = re.search(r"apt-get install ([^&]*)", stages[1])
runtime_pkgs = set()
if check(runtime_install is not None, "container: the runtime stage installs no packages"):
    runtime_pkgs = {w for w in runtime_install.group(1).split() if not w.startswith("-")}
# The libraries the binary names itself (NEEDED), resolved to paths by ldd, owned by packages.
# Their own dependencies (liblz4, libsasl2 ... of librdkafka) come with them through apt.
needed = re.findall(r"NEEDED\s+(\S+)", subprocess.run(["objdump", "-p", str(VIGIL)], capture_output=True, text=True).stdout)
ldd = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(["ldd", str(VIGIL)], capture_output=True, text=True).stdout, re.M))
check(len(needed) >= 5, f"container: could not read the NEEDED libraries of {VIGIL}")
linked = set()
for soname in needed:
    lib = ldd.get(soname)
    if not check(lib is not None, f"container: ldd does not resolve {soname}"):
        continue
    real = os.path.realpath(lib)
    owner = None
    for candidate in (lib, real, lib.replace("/usr/lib/", "/lib/"), real.replace("/usr/lib/", "/lib/")):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if r.returncode == 0:
            owner = r.stdout.split(":")[0]
            break
    check(owner is not None, f"container: no Debian package owns {lib}")
    if owner:
        linked.add(owner)
in_base_image = {"libc6", "libgcc-s1", "libstdc++6"}  # debian:12-slim has these (apt needs them)
missing = linked - in_base_image - runtime_pkgs
extra = runtime_pkgs - linked - {"ca-certificates", "tzdata"} - in_base_image
check(not missing, f"container: the runtime stage lacks packages the binary links: {sorted(missing)}")
check(not extra, f"container: the runtime stage installs packages the binary does not link: {sorted(extra)}")
expose = {int(p) for p in re.findall(r"^EXPOSE (.*)$", containerfile, re.M)[0].split()}
check(expose == {int(defaults["metrics.port"]), int(defaults["metrics.health_port"])},
      f"container: EXPOSE {sorted(expose)} != metrics ports {defaults['metrics.port']}, {defaults['metrics.health_port']}")
cmd = re.search(r'^CMD (\[.*\])$', containerfile, re.M)
check(cmd and yaml.safe_load(cmd.group(1)) == ["run", "--config", "/etc/vigil/vigil.yaml"] and
      "/out/etc/vigil/vigil.yaml" in stages[0], "container: CMD does not run the installed /etc/vigil/vigil.yaml")

# setup.sh's build packages are the ones the Containerfile gets (it runs that very list).
setup = (DEPLOY / "local" / "setup.sh").read_text()
check(re.search(r"--build-only\)\s+packages=\(\"\$\{build_packages\[@\]\}\"\)", setup) is not None,
      "setup.sh: --build-only does not install exactly build_packages")

# --- metric names in the rules and the dashboard --------------------------------------------------
metrics_src = (ROOT / "pipeline" / "metrics" / "service_metrics.cpp").read_text()
exported = set(re.findall(r'\.Name\("(vigil_[a-z_]+)"\)', metrics_src))
histograms = set(re.findall(r'BuildHistogram\(\)\s*\.Name\("(vigil_[a-z_]+)"\)', metrics_src))
valid = exported | {h + s for h in histograms for s in ("_bucket", "_sum", "_count")}
check(len(exported) >= 5, f"could not read the metric names from service_metrics.cpp: {exported}")
rules_text = (DEPLOY / "prometheus" / "vigil-rules.yaml").read_text()
rules = yaml.safe_load(rules_text)
exprs = [("rules", r["expr"]) for g in rules["groups"] for r in g["rules"]]
import json
dashboard = json.loads((DEPLOY / "grafana" / "vigil-dashboard.json").read_text())
exprs += [("dashboard: " + p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
for where, expr in exprs:
    for name in set(re.findall(r"(?<![:\w])(vigil_[a-z_]+)(?![:\w])", expr)):
        check(name in valid, f"{where}: metric {name} is not exported by the service")
for label, values_src in (("event", r'counters_\.Add\(\{\{"event", "([a-z_]+)"\}\}\)'),
                          ("kind", r'(?:gauges_|latency_)\.Add\(\{\{"kind", "([a-z_]+)"\}\}')):
    known = set(re.findall(values_src, metrics_src))
    for where, expr in exprs:
        for value in re.findall(label + r'=~?"([^"]+)"', expr):
            check(any(re.fullmatch(value, k) for k in known), f"{where}: {label}=\"{value}\" matches no series the service exports")

print(f"{checks} checks")
if problems:
    print(f"{len(problems)} problem(s):")
    for p in problems:
        print(" -", p)
    sys.exit(1)
print("deployment artefacts consistent with the service")

"""What the compose-spec schema cannot see in docker/compose.yaml: references between its
parts and to the repository. Exits non-zero naming each problem.

usage: check_compose.py COMPOSE_FILE DOCKERFILE [BASE_DIR]
(BASE_DIR: where relative paths start; default the compose file's directory)
"""
import os
import re
import sys

import yaml

compose_path, dockerfile_path = sys.argv[1], sys.argv[2]
base = sys.argv[3] if len(sys.argv) > 3 else os.path.dirname(os.path.abspath(compose_path))
with open(compose_path) as f:
    compose = yaml.safe_load(f)
with open(dockerfile_path) as f:
    dockerfile = f.read()

problems = []
services = compose.get("services", {})
volumes = compose.get("volumes", {}) or {}
exposed = set()
for line in dockerfile.splitlines():
    if line.startswith("EXPOSE "):
        exposed.update(int(p.split("/")[0]) for p in line.split()[1:])

for name, svc in services.items():
    deps = svc.get("depends_on", {})
    for dep in deps if isinstance(deps, (list, dict)) else []:
        if dep not in services:
            problems.append(f"{name}: depends_on unknown service {dep}")
        elif isinstance(deps, dict) and deps[dep].get("condition") == "service_healthy":
            target = services[dep]
            has_check = "healthcheck" in target or (
                "build" in target and "HEALTHCHECK" in dockerfile
            )
            if not has_check:
                problems.append(f"{name}: waits for {dep} to be healthy, which has no healthcheck")
    for vol in svc.get("volumes", []):
        source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source")
        if source.startswith((".", "/")):
            if not os.path.exists(os.path.join(base, source)):
                problems.append(f"{name}: bind mount {source} does not exist")
        elif source not in volumes:
            problems.append(f"{name}: named volume {source} is not declared")
    build = svc.get("build")
    if build:
        context = os.path.join(base, build.get("context", "."))
        df = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if os.path.realpath(df) != os.path.realpath(dockerfile_path):
            problems.append(f"{name}: builds {df}, not {dockerfile_path}")
        for port in svc.get("ports", []):
            container = int(str(port).rsplit(":", 1)[-1].split("/")[0])
            if container not in exposed:
                problems.append(f"{name}: publishes {container}, which the image does not EXPOSE")
    entry = svc.get("entrypoint") or []
    for arg in entry:
        m = re.match(r"^/demo/(.+)$", str(arg))
        if m and not os.path.exists(os.path.join(base, "demo", m.group(1))):
            problems.append(f"{name}: runs {arg}, which docker/demo does not hold")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)

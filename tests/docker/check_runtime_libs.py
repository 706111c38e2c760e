"""Does the runtime image have every shared library the eddy binary needs?

The runtime stage installs no packages, so every library must come with the slim base:
Debian's Essential packages and what they depend on (a subset of debian:<release>-slim,
which also has apt and the required-priority packages, so the check errs on the strict
side). The packages are resolved with this machine's dpkg/apt, which must be the same
Debian release as the Dockerfile's DEBIAN_RELEASE.

usage: check_runtime_libs.py BINARY DOCKERFILE
"""
import re
import subprocess
import sys

binary, dockerfile_path = sys.argv[1], sys.argv[2]
with open(dockerfile_path) as f:
    dockerfile = f.read()

release = re.search(r"^ARG DEBIAN_RELEASE=(\S+)", dockerfile, re.M).group(1)
codename = dict(
    line.strip().split("=", 1) for line in open("/etc/os-release") if "=" in line
).get("VERSION_CODENAME", "").strip('"')
if codename != release:
    sys.exit(f"this machine is Debian {codename!r}, the image is {release!r}: cannot check")

runtime = dockerfile.split(" AS runtime", 1)[1]
if "apt-get install" in runtime:
    sys.exit("the runtime stage installs packages: teach this check which")

def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout

libs = []
for line in run("ldd", binary).splitlines():
    m = re.match(r"\s*(\S+) => (\S+)", line)
    if m:
        libs.append((m.group(1), m.group(2)))
    elif "ld-linux" in line:
        libs.append(("ld-linux", line.split()[0]))
if not libs:
    sys.exit("ldd found no shared libraries: is this a dynamic binary?")

def owner(path):
    candidates = [path]
    if path.startswith("/usr/"):
        candidates.append(path[4:])
    else:
        candidates.append("/usr" + path)
    for c in candidates:
        r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0].strip()
    return None

essential = [
    line.split("\t")[0].split(":")[0]
    for line in run("dpkg-query", "-W", "-f", "${Package}\t${Essential}\n").splitlines()
    if line.endswith("\tyes")
]
# Breadth-first over Depends/Pre-Depends, taking only the first package of an "a | b"
# group (what apt installs) and skipping virtual packages, so the set stays a subset of the
# real base.
closure = set()
frontier = set(essential)
while frontier:
    closure |= frontier
    out = run("apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
              "--no-breaks", "--no-replaces", "--no-enhances", *sorted(frontier))
    found = set()
    previous_was_or = False
    for line in out.splitlines():
        m = re.match(r"\s+(\|?)(?:Pre)?Depends: (\S+)", line)
        if not m:
            previous_was_or = False
            continue
        if not previous_was_or and not m.group(2).startswith("<"):
            found.add(m.group(2).split(":")[0])
        previous_was_or = m.group(1) == "|"
    frontier = found - closure
print(f"{len(closure)} packages in the base closure")

missing = []
for soname, path in libs:
    pkg = owner(path)
    status = "in the base" if pkg in closure else "MISSING"
    print(f"{soname:24} {path:45} {pkg} ({status})")
    if pkg not in closure:
        missing.append(soname)
if missing:
    sys.exit(f"not in the {release}-slim base: {', '.join(missing)}")

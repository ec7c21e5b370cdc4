#!/usr/bin/env python3
"""Deploy and promote wall times on one host (runtime: compose) vs a 3-node swarm (runtime: swarm), side by side.

All on the test hosts of scripts/test-engine, so the engines are the same build on the same machine: the one host
is the swarm manager's dockerd itself, driven by Compose; the swarm runs with 1 and with 3 replicas per track.
Each run: deploy (the app image built, but absent from the workers, so a swarm deploy ships it), promote
canary, rollback, promote canary, promote stable (its gate reads the 5 s canary window) under a light steady
load through nginx (the canary gate wants traffic; failed requests are counted), teardown.

Run inside the manager's network namespace (nginx's port and OPA listen on 127.0.0.1 there):
  scripts/test-engine up docker   # or podman: the stand-in images for the nodes
  scripts/test-engine swarm up 3
  source .engine/env; set -a; source .engine/swarm.env; set +a
  nsenter --net=/var/run/netns/sd-node1 .venv/bin/python bench/swarm_vs_host.py [--runs 2]
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e"), str(ROOT / "src")]
from hostskit import ENGINE_DIR, read_env  # noqa: E402
from stackkit import SteadyLoad, make_project, manifest_of, public_url  # noqa: E402

import docker  # noqa: E402

STEPS = [("deploy", ["deploy"]), ("promote canary", ["promote", "canary"]), ("rollback", ["rollback"]),
         ("promote canary again", ["promote", "canary"]), ("promote stable", ["promote", "stable"]),
         ("teardown", ["teardown"])]


def swiftdeploy(project: Path, words: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(project / "swiftdeploy"), *words], cwd=project, capture_output=True,
                            text=True, timeout=900)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"swiftdeploy {' '.join(words)} in {project} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def configure(project: Path, runtime: str, replicas: int, workers: list[str]) -> None:
    manifest = project / "manifest.yaml"
    text = manifest.read_text()
    if runtime == "swarm":
        text = text.replace("  mode: stable\n", f"  mode: stable\n  replicas: {replicas}\n", 1)
        text = "runtime: swarm\n" + text + f"swarm:\n  engines: {json.dumps(workers)}\n"
    manifest.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    runs = parser.parse_args().runs
    if not (ENGINE_DIR / "swarm.env").exists():
        raise SystemExit("no .engine/swarm.env: run scripts/test-engine swarm up 3 first (see the usage above)")
    pairs = read_env(ENGINE_DIR / "swarm.env")
    names = pairs["SWIFTDEPLOY_SWARM_NODES"].split(",")
    if len(names) != 3:
        raise SystemExit(f".engine/swarm.env has {len(names)} nodes; this compares with 3 (swarm up 3)")
    manager = pairs["DOCKER_HOST"]
    os.environ["DOCKER_HOST"] = manager
    workers_tcp = [pairs[f"SWIFTDEPLOY_{n.upper()}_TCP"] for n in names[1:]]
    workers = [docker.DockerClient(base_url=pairs[f"SWIFTDEPLOY_{n.upper()}_SOCKET"], version="1.41") for n in names[1:]]
    setups = [("one host (compose)", "compose", 1), ("3-node swarm, 1 replica", "swarm", 1),
              ("3-node swarm, 3 replicas", "swarm", 3)]
    times = {label: {step: [] for step, _ in STEPS} for label, _, _ in setups}
    shipped = []
    failed, served = dict.fromkeys(times, 0), dict.fromkeys(times, 0)
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            for label, runtime, replicas in setups:
                project = make_project(Path(tmp) / f"{runtime}{replicas}-{run}", canary={"version": "1.1.0", "weight": 40})
                configure(project, runtime, replicas, workers_tcp)
                subprocess.run([sys.executable, "-m", "doit", "build", "init"], cwd=project, check=True,
                               capture_output=True)
                image = manifest_of(project).services.image
                if runtime == "swarm":
                    for worker in workers:  # so the deploy includes giving the workers the image
                        if worker.images.list(name=image):
                            worker.images.remove(image, force=True)
                try:
                    elapsed, out = swiftdeploy(project, ["deploy"])
                    times[label]["deploy"].append(elapsed)
                    shipped += [float(s) for s in re.findall(r"swarm node \S+: loaded .*\((\d+\.\d) s, no registry\)", out)]
                    with SteadyLoad(public_url(project), threads=2, pause=0.02) as load:  # the canary gate wants traffic
                        for step, words in STEPS[1:-1]:
                            times[label][step].append(swiftdeploy(project, words)[0])
                    failed[label] += sum(load.failures().values())
                    served[label] += load.total
                    times[label]["teardown"].append(swiftdeploy(project, ["teardown"])[0])
                finally:
                    subprocess.run([sys.executable, str(project / "swiftdeploy"), "teardown"], cwd=project,
                                   capture_output=True, timeout=300)
    print(f"machine: {platform.node()}, {os.cpu_count()} cpus, {platform.platform()}, load {os.getloadavg()[0]:.1f}; "
          f"engines: Debian docker.io {docker.DockerClient(base_url=manager, version='1.41').version()['Version']} "
          f"test hosts (scripts/test-engine swarm up 3)")
    print(f"command: {' '.join(sys.argv)}  ({runs} runs each; median seconds, min-max)")
    width = max(len(step) for step, _ in STEPS)
    print(f"{'':{width}}  " + "  ".join(f"{label:>26}" for label, _, _ in setups))
    for step, _ in STEPS:
        cells = []
        for label, _, _ in setups:
            samples = times[label][step]
            cells.append(f"{statistics.median(samples):7.1f} ({min(samples):.1f}-{max(samples):.1f})")
        print(f"{step:{width}}  " + "  ".join(f"{cell:>26}" for cell in cells))
    print(f"{'requests under load':{width}}  " + "  ".join(f"{f'{served[l]} ({failed[l]} failed)':>26}" for l, _, _ in setups))
    if shipped:
        print(f"giving a worker the app image in a swarm deploy (docker save | load, workers in parallel): median "
              f"{statistics.median(shipped):.1f} s over {len(shipped)} loads")


if __name__ == "__main__":
    main()

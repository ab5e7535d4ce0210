#!/usr/bin/python3
"""The apps' benchmark (issue 15): prints side=... metric=... value=... unit=... lines.

- HTTP API requests/s: GET /api/nodes and POST /api/tasks on one hyphad of three, direct and
  through nginx; GET /api/nodes against OTP's inets httpd serving the same JSON (the BEAM side).
  The client is wrk (2 threads, 8 keep-alive connections): a C load generator, so the figures
  are the servers' (a Python client measured itself: both sides were capped near 5k/s). With 2
  cores the client still takes its share; the ratio is what compares.
- Dashboard update latency: from a task's progress (hypha_tasks:steps(100, 20): progress i is
  reported at started + i*20 ms) to the event reaching a client of /api/events, direct and
  through nginx: p50 and p99 over 100 updates.
- Download failover: kill -9 of the node running a download until the source receives the
  survivor's Range request (bytes flow again), and until the download is ready.

Usage: /usr/bin/python3 bench/apps_bench.py BUILD_DIR OUT_DIR   (ERL_EPMD_PORT set)
"""
import datetime
import http.client as httpclient
import json
import os
import signal  # noqa: F401
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import FileServer, free_port, http, Nginx, start_cluster, stop_all, wait_for  # noqa: E402

NAMES = ["ba@127.0.0.1", "bb@127.0.0.1", "bc@127.0.0.1"]


def line(side, metric, value, unit):
    print(f"side={side} metric={metric} value={value} unit={unit}", flush=True)


# wrk's script for POST /api/tasks: a new task name for every request (thread id, count).
POST_TASKS_LUA = """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local n = 0
request = function()
  n = n + 1
  local body = '{"name":"' .. tag .. '-' .. id .. '-' .. n .. '","module":"erlang","function":"node","args":"[]"}'
  return wrk.format("POST", "/api/tasks", {["Content-Type"] = "application/json"}, body)
end
"""


def rate(port, path, seconds=3, connections=8, post_tag=None, out="."):
    """Requests/s of wrk (2 threads, `connections` keep-alive connections) for `seconds`: GET
    `path`, or with post_tag POST /api/tasks with a new task each time. Every answer must be 2xx."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
    if post_tag:
        script = os.path.join(out, f"post_tasks_{post_tag}.lua")
        with open(script, "w") as f:
            f.write(f'tag = "{post_tag}"\n' + POST_TASKS_LUA)
        cmd += ["-s", script]
    r = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=seconds + 30)
    text = r.stdout
    if r.returncode != 0 or "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk {path} on port {port}: {text}{r.stderr}")
    for ln in text.splitlines():
        if ln.startswith("Requests/sec:"):
            return round(float(ln.split()[1]))
    raise RuntimeError(f"wrk {path}: no rate in {text}")


def dashboard_latency(port, name, steps=100, step_ms=20):
    """p50, p99 (ms) from each progress report of a task to its event on /api/events."""
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/api/events")
    r = c.getresponse()
    lat, started = [], None
    status, body = http("POST", f"http://127.0.0.1:{port}/api/tasks",
                        {"name": name, "module": "hypha_tasks", "function": "steps", "args": f"[{steps}, {step_ms}]"})
    if status != 201:
        raise RuntimeError(f"POST /api/tasks: {status} {body}")
    seen = set()
    while len(seen) < steps:
        raw = r.readline()  # chunked: the response decodes it
        if not raw:
            raise RuntimeError("the event stream ended")
        got = time.time() * 1000
        text = raw.decode()
        if not text.startswith("data: "):
            continue
        e = json.loads(text[6:])
        if e.get("kind") != "task" or e.get("name") != name or e.get("progress") is None:
            continue
        if started is None:
            started = datetime.datetime.fromisoformat(e["started"].replace("Z", "+00:00")).timestamp() * 1000
        i = e["progress"] * steps // 100
        if i in seen or i == 0:
            continue
        seen.add(i)
        lat.append(got - (started + i * step_ms))
    c.close()
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def main():
    build, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    subprocess.run(["epmd", "-daemon"], check=True)
    shared = os.path.join(out, "downloads")
    extra = f'[download_manager]\nenabled = true\ndir = "{shared}"\nallow = ["127.0.0.0/8"]  # the local file server\n'
    hyphad = os.path.join(build, "apps", "hyphad", "hyphad")
    nodes = start_cluster(hyphad, out, NAMES, "bench-apps", extra)
    beam = None
    nginx = None
    files = FileServer(random.Random(3).randbytes(32 << 20), 4 << 20)
    try:
        nginx = Nginx(out, [n.http_port for n in nodes])
        portfile = os.path.join(out, "beam.port")
        if os.path.exists(portfile):
            os.remove(portfile)  # a previous run's
        beam = subprocess.Popen(["escript", os.path.join(os.path.dirname(os.path.abspath(__file__)), "http_beam.escript"),
                                 str(free_port()), portfile, f"bench_http_{os.getpid()}@127.0.0.1", "bench-apps", NAMES[1], NAMES[2]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for("inets httpd", lambda: os.path.exists(portfile) and open(portfile).read().strip(), 30)
        beam_port = int(open(portfile).read())
        direct = nodes[0].http_port
        for rnd in range(2):
            line("beam", "http_get_nodes", rate(beam_port, "/api/nodes"), "req/s")
            line("hypha", "http_get_nodes", rate(direct, "/api/nodes"), "req/s")
        line("hypha", "http_get_nodes_via_nginx", rate(nginx.port, "/api/nodes"), "req/s")
        line("hypha", "http_post_tasks", rate(direct, "/api/tasks", 2, post_tag="d", out=out), "req/s")
        line("hypha", "http_post_tasks_via_nginx", rate(nginx.port, "/api/tasks", 2, post_tag="n", out=out), "req/s")
        p50, p99 = dashboard_latency(direct, "lat-direct")
        line("hypha", "dashboard_update_p50", f"{p50:.1f}", "ms")
        line("hypha", "dashboard_update_p99", f"{p99:.1f}", "ms")
        p50, p99 = dashboard_latency(nginx.port, "lat-nginx")
        line("hypha", "dashboard_update_via_nginx_p50", f"{p50:.1f}", "ms")
        line("hypha", "dashboard_update_via_nginx_p99", f"{p99:.1f}", "ms")
        # Download failover.
        cookie = {"Cookie": "hypha_session=" + "b" * 32}
        status, body = http("POST", nginx.url("/api/downloads"), {"url": files.url("big.bin")}, headers=cookie)
        if status != 201:
            raise RuntimeError(f"POST /api/downloads: {status} {body}")
        me = wait_for("a third of the download", lambda: (d := http("GET", nginx.url("/api/downloads/me"), headers=cookie)[1])
                      and d.get("progress", 0) >= 30 and d, 60)
        runner = next(n for n in nodes if n.name == me["node"])
        asked = len(files.ranges)
        t0 = time.monotonic()
        runner.kill()
        wait_for("the survivor's Range request", lambda: len(files.ranges) > asked, 30, every=0.002)
        line("hypha", "download_failover_until_bytes_flow", f"{(time.monotonic() - t0) * 1000:.0f}", "ms")
        wait_for("the download ready", lambda: http("GET", nginx.url("/api/downloads/me"), headers=cookie)[1].get("state") == "ready", 60)
    finally:
        if beam:
            os.killpg(beam.pid, 9)  # the escript and the VM it started
        stop_all(nginx, nodes, files)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""The hyphad demo: three hyphad nodes behind nginx, the dashboard's address, tasks and a download
that survive kill -9 of the node running them. Every line is what the nodes answered.

Usage: /usr/bin/python3 demo/hyphad_cluster.py --bin BUILD_DIR --out DIR [--keep] [--port P]
  --keep: leave the cluster running until Enter (open the printed addresses in a browser)
"""
import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import FileServer, http, Nginx, start_cluster, stop_all, wait_for  # noqa: E402

NAMES = ["alpha@127.0.0.1", "beta@127.0.0.1", "gamma@127.0.0.1"]


def say(text):
    print(f"==> {text}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--port", type=int, default=None)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    subprocess.run(["epmd", "-daemon"], check=True)
    hyphad = os.path.join(args.bin, "apps", "hyphad", "hyphad")
    shared = os.path.join(args.out, "downloads")
    extra = f'[download_manager]\nenabled = true\ndir = "{shared}"\nallow = ["127.0.0.0/8"]  # the local file server\n'
    nodes = start_cluster(hyphad, args.out, NAMES, "demo-cookie", extra)
    by_name = {n.name: n for n in nodes}
    data = random.Random(1).randbytes(16 << 20)
    files = FileServer(data, 2 << 20)
    nginx = None
    try:
        nginx = Nginx(args.out, [n.http_port for n in nodes], port=args.port)
        say(f"three hyphad nodes ({', '.join(NAMES)}) behind nginx:")
        print(f"    dashboard:  {nginx.url('/')}\n    downloads:  {nginx.url('/downloads')}\n"
              f"    API:        {nginx.url('/api/nodes')}, {nginx.url('/metrics')}", flush=True)

        say("three tasks through nginx (POST /api/tasks, hypha_tasks:steps(40, 250), restart: true):")
        for name in ["nightly-report", "reindex-search", "thumbnails"]:
            status, body = http("POST", nginx.url("/api/tasks"), {"name": name, "module": "hypha_tasks", "function": "steps",
                                                                 "args": "[40, 250]", "restart": True})
            print(f"    {status} {body}", flush=True)
        session = "hypha_session=" + "d" * 32
        say("a visitor's download of 16 MiB from a local server at 2 MiB/s (POST /api/downloads):")
        status, body = http("POST", nginx.url("/api/downloads"), {"url": files.url("dataset.tar")}, headers={"Cookie": session})
        print(f"    {status} state={body.get('state')} node={body.get('node')}", flush=True)
        me = wait_for("the download to be a quarter done", lambda: (d := http(
            "GET", nginx.url("/api/downloads/me"), headers={"Cookie": session})[1]) and d.get("progress", 0) >= 25 and d, 60)
        print(f"    {me['progress']}% on {me['node']}", flush=True)
        victim = me["node"]
        say(f"kill -9 {victim} (it runs the download)")
        by_name[victim].kill()
        t0 = time.monotonic()
        moved = wait_for("the download on a survivor", lambda: (d := http(
            "GET", nginx.url("/api/downloads/me"), headers={"Cookie": session})[1]) and d.get("node") not in (None, victim) and d, 30)
        print(f"    {time.monotonic() - t0:.2f} s later it runs on {moved['node']}, from {moved['bytes']} bytes (its checkpoint)",
              flush=True)
        done = wait_for("the download ready", lambda: (d := http(
            "GET", nginx.url("/api/downloads/me"), headers={"Cookie": session})[1]) and d.get("state") == "ready" and d, 60)
        req = urllib.request.Request(nginx.url("/api/downloads/me/file"), headers={"Cookie": session})
        with urllib.request.urlopen(req, timeout=30) as r:
            got = hashlib.sha256(r.read()).hexdigest()
        print(f"    ready on {done['node']}: sha256 {done['sha256'][:16]}…, the file through nginx "
              f"{'matches the source' if got == files.sha256 else 'DOES NOT match'}; the source saw {files.ranges}", flush=True)
        say("the tasks, as any node tells them (GET /api/tasks through nginx):")
        tasks = wait_for("every task done", lambda: (t := http("GET", nginx.url("/api/tasks"))[1].get("tasks")) and all(
            x["status"] == "done" for x in t) and t, 60)
        for t in tasks:
            print(f"    {t['name']}: {t['status']} on {t['node']}", flush=True)
        if args.keep:
            say(f"the cluster runs on (two of three nodes); dashboard at {nginx.url('/')}; Enter stops it")
            input()
    finally:
        stop_all(nginx, nodes, files)


if __name__ == "__main__":
    main()

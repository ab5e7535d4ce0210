#!/usr/bin/python3
"""e2e.downloads: the download manager in real headless Chromium, through nginx in front of three
hyphad nodes sharing one download dir, against a local file server slowed down (docs/apps.md,
"The download manager").

  1. the visitor opens /downloads (a session cookie), gives a URL, and the progress bar moves;
  2. kill -9 of the node running the job: the job resumes on a survivor from its checkpoint with
     a Range request, the page follows it (one job throughout, never a second) and shows it ready;
  3. the file, fetched with the visitor's cookie through nginx and from each survivor, has the
     source's length and SHA-256.

Screenshots of each state go to --out (docs/img holds copies). Every wait polls a condition with
a deadline; nothing waits for a fixed time.
Usage: /usr/bin/python3 downloads_e2e.py --hyphad PATH --out DIR   (ERL_EPMD_PORT set)
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import attrs, browser, e2e_main, Failure, FileServer, http, Nginx, start_cluster, stop_all, wait_for  # noqa: E402

NAMES = ["alpha@127.0.0.1", "beta@127.0.0.1", "gamma@127.0.0.1"]
SIZE = 8 << 20         # 8 MiB
RATE = 768 * 1024      # bytes/s: about 11 s of download, long enough to watch and kill a node


def page(d):
    """The download box's state as the page shows it."""
    return d.execute_script(
        "const b = document.getElementById('download');"
        "return {state: b.dataset.state, progress: +b.dataset.progress, node: document.getElementById('node').textContent,"
        " sha: document.getElementById('sha').textContent, conn: document.getElementById('conn').dataset.state};")


def download_children(node):
    """The supervised children named {download, _} that `node` knows of (via its dashboard state)."""
    status, body = http("GET", node.url("/api/dashboard"))
    if status != 200:
        return None
    return [c for c in body.get("children") or [] if c["id"].startswith("{download,")]


def fetch(url, cookie):
    req = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def run(args):
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    shared = os.path.join(args.out, "shared-downloads")  # one volume for the three nodes
    subprocess.run(["epmd", "-daemon"], check=True)
    extra = f'[download_manager]\nenabled = true\ndir = "{shared}"\nallow = ["127.0.0.0/8"]  # the local file server\ncache = "downloads"\n'
    nodes = start_cluster(args.hyphad, args.out, NAMES, "downloads-e2e", extra)
    procs = {n.name: n for n in nodes}
    data = random.Random(7).randbytes(SIZE)
    files = FileServer(data, RATE)
    nginx = driver = None
    watching, most_children = True, [0]

    def watch_children():  # one job throughout: never two {download, _} children anywhere
        while watching:
            for n in nodes:
                if n.alive():
                    try:
                        kids = download_children(n)
                    except OSError:
                        continue
                    if kids is not None:
                        most_children[0] = max(most_children[0], len(kids))
            time.sleep(0.1)

    try:
        nginx = Nginx(args.out, [n.http_port for n in nodes])
        driver = browser(1100, 800)
        driver.get(nginx.url("/downloads"))
        wait_for("the page to be live", lambda: page(driver)["conn"] == "live")
        cookie = next((f"{c['name']}={c['value']}" for c in driver.get_cookies() if c["name"] == "hypha_session"), None)
        if not cookie:
            raise Failure(f"no session cookie: {driver.get_cookies()}")
        watcher = threading.Thread(target=watch_children, daemon=True)
        watcher.start()

        driver.find_element("id", "url").send_keys(files.url("ubuntu-mini.iso"))
        driver.find_element("id", "go").click()
        first = wait_for("the progress bar to start", lambda: (p := page(driver))["state"] == "processing" and p["progress"] > 0 and p)
        later = wait_for("the progress bar to move",
                         lambda: (p := page(driver))["progress"] >= first["progress"] + 5 and p)
        print(f"progress bar moved {first['progress']}% -> {later['progress']}% on {later['node']}", flush=True)
        driver.save_screenshot(os.path.join(args.out, "downloads-progress.png"))
        # The file is not there yet; bad requests name the field; a forged cookie is no session.
        status, body = http("GET", nginx.url("/api/downloads/me/file"), headers={"Cookie": cookie})
        if status != 409 or body.get("error") != "not_ready" or body["download"]["state"] != "processing":
            raise Failure(f"GET /api/downloads/me/file while it runs: {status} {body}")
        # (The cloud's metadata address is not in `allow`: refused as such.)
        metadata = {"url": "http://169.254.169.254/latest/meta-data/"}
        for bad in [{}, {"url": 42}, {"url": "ftp://127.0.0.1/x"}, metadata]:
            status, body = http("POST", nginx.url("/api/downloads"), bad, headers={"Cookie": cookie})
            if status != 400 or body.get("field") != "url" or \
                    (bad is metadata and "download_manager.allow" not in body.get("detail", "")):
                raise Failure(f"POST /api/downloads {bad}: {status} {body}")
        status, body = http("GET", nginx.url("/api/downloads/me"), headers={"Cookie": "hypha_session=not-a-session"})
        if status != 404:
            raise Failure(f"GET /api/downloads/me with a forged cookie: {status} {body}")
        # A second start while it runs: refused, the same job goes on.
        status, body = http("POST", nginx.url("/api/downloads"), {"url": files.url("other.iso")}, headers={"Cookie": cookie})
        if status != 409 or body.get("error") != "running":
            raise Failure(f"a second POST /api/downloads: {status} {body}")

        runner = later["node"]
        if runner not in procs:
            raise Failure(f"the page says the job runs on {runner!r}")
        at_kill = page(driver)["progress"]
        killed_at = time.monotonic()
        procs[runner].kill()
        print(f"kill -9 {runner} (the job's node) at {at_kill}%", flush=True)
        moved = wait_for("the job to run on a survivor", lambda: (p := page(driver))["node"] not in ("", runner)
                         and p["state"] == "processing" and p, timeout=30)
        print(f"the page shows the job on {moved['node']} at {moved['progress']}% "
              f"{time.monotonic() - killed_at:.2f} s after the kill", flush=True)
        resumed = wait_for("bytes flowing again on the survivor",
                           lambda: (p := page(driver))["progress"] > moved["progress"] and p, timeout=30)
        print(f"bytes flow again: {resumed['progress']}% {time.monotonic() - killed_at:.2f} s after the kill", flush=True)
        if resumed["progress"] < at_kill - 10:
            raise Failure(f"the job went back from {at_kill}% to {resumed['progress']}%: not resumed from its checkpoint")
        moves = attrs(driver, "#moves li", ["data-from", "data-to"])
        if moves != [{"data-from": runner, "data-to": moved["node"]}]:
            raise Failure(f"the page's list of moves: {moves}")
        driver.save_screenshot(os.path.join(args.out, "downloads-resumed.png"))

        done = wait_for("the download ready", lambda: (p := page(driver))["state"] == "ready" and p, timeout=60)
        if done["sha"] != files.sha256:
            raise Failure(f"the page shows sha256 {done['sha']}, the source's is {files.sha256}")
        ranges = [r for r in files.ranges if r]
        if not ranges or not ranges[-1].startswith("bytes=") or int(ranges[-1][6:-1]) <= 0:
            raise Failure(f"no resume with a Range request: the source saw {files.ranges}")
        print(f"ready on {done['node']}; the source saw {files.ranges} (resumed from byte {ranges[-1][6:-1]})", flush=True)
        driver.save_screenshot(os.path.join(args.out, "downloads-ready.png"))

        for where, url in [("nginx", nginx.url("/api/downloads/me/file"))] + [
                (n.name, n.url("/api/downloads/me/file")) for n in nodes if n.alive()]:
            status, body = fetch(url, cookie)
            if status != 200 or len(body) != SIZE or hashlib.sha256(body).hexdigest() != files.sha256:
                raise Failure(f"the file from {where}: {status}, {len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()}")
        print("the file from nginx and from each survivor: 8 MiB, the source's sha256", flush=True)
        status, me = http("GET", nginx.url("/api/downloads/me"), headers={"Cookie": cookie})
        if status != 200 or me["state"] != "ready" or me["bytes"] != SIZE or me["progress"] != 100:
            raise Failure(f"GET /api/downloads/me: {status} {me}")
        status, other = http("GET", nginx.url("/api/downloads/me"))
        if status != 404:
            raise Failure(f"GET /api/downloads/me without the cookie: {status} {other}")
        if most_children[0] != 1:
            raise Failure(f"{most_children[0]} download jobs seen at once")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/api/downloads/me/events" not in e["message"]]
        if errors:
            raise Failure(f"errors in the page's console: {errors}")
        print("e2e.downloads: passed", flush=True)
    except Failure as e:
        if driver:
            driver.save_screenshot(os.path.join(args.out, "failure.png"))
            raise Failure(f"{e}\n  page: {page(driver)}\n  source saw: {files.ranges}"
                          f"\n  console={driver.get_log('browser')}") from None
        raise
    finally:
        watching = False
        stop_all(driver, nginx, nodes, files)


if __name__ == "__main__":
    e2e_main("e2e.downloads", run)

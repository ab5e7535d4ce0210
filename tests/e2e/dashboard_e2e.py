#!/usr/bin/python3
"""e2e.dashboard: the live dashboard in real headless Chromium, through nginx in front of three
hyphad nodes (docs/apps.md, "The live dashboard").

  1. the page shows the three nodes up, live (pushed by server-sent events);
  2. tasks started through nginx appear, and their progress bars move without a reload;
  3. kill -9 of the node serving the page's stream: the page reconnects through nginx to another
     node, shows the same tasks (the cluster's, not a node's), the dead node down, and the tasks
     carry on to their end (those of the dead node restarted on a survivor).

Screenshots of each state go to --out (docs/img holds copies). Every wait has a deadline and polls
a condition; nothing waits for a fixed time.
Usage: /usr/bin/python3 dashboard_e2e.py --hyphad PATH --out DIR   (ERL_EPMD_PORT set)
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import attrs, browser, e2e_main, Failure, http, Nginx, start_cluster, stop_all, wait_for  # noqa: E402

NAMES = ["alpha@127.0.0.1", "beta@127.0.0.1", "gamma@127.0.0.1"]
TASKS = ["nightly-report", "reindex-search", "thumbnails"]
STEPS, STEP_MS = 60, 250  # 15 s a task: long enough to watch, kill a node and see it carry on


def nodes_on_page(d):
    return {r["data-node"]: r["data-status"] for r in attrs(d, "#nodes tr[data-node]", ["data-node", "data-status"])}


def tasks_on_page(d):
    return {r["data-task"]: r for r in attrs(d, "#tasks tr[data-task]", ["data-task", "data-status", "data-node", "data-progress"])}


def task_names_in_registry(d):
    """The tasks whose supervised child's name the page's registry view lists."""
    return {n for r in attrs(d, "#names tr[data-name]", ["data-name"]) for n in TASKS if f'"{n}"' in r["data-name"]}


def text(d, element_id):
    return d.execute_script("return document.getElementById(arguments[0]).textContent;", element_id)


def conn_state(d):
    return d.execute_script("return document.getElementById('conn').dataset.state;")


def progress_moves(d, name, timeout=20.0):
    """Two different progress values of a running task, the second above the first."""
    first = wait_for(f"{name}'s first progress", lambda: tasks_on_page(d).get(name, {}).get("data-progress"), timeout)
    later = wait_for(f"{name}'s progress to move past {first}",
                     lambda: (p := tasks_on_page(d).get(name, {}).get("data-progress")) and int(p) > int(first) and p,
                     timeout)
    return int(first), int(later)


def run(args):
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    # An epmd of the test's own port (ERL_EPMD_PORT): the nodes outlive any one of them.
    subprocess.run(["epmd", "-daemon"], check=True)
    nodes = start_cluster(args.hyphad, args.out, NAMES, "dashboard-e2e")
    procs = {n.name: n for n in nodes}
    nginx = driver = None
    try:
        first = nodes[0]

        nginx = Nginx(args.out, [n.http_port for n in nodes])
        driver = browser()
        driver.get(nginx.url("/"))
        wait_for("the page to be live", lambda: conn_state(driver) == "live")
        wait_for("three nodes up on the page", lambda: nodes_on_page(driver) == {n: "up" for n in NAMES})
        if text(driver, "counts") != "3 of 3 nodes up":
            raise Failure(f"counts say {text(driver, 'counts')!r}")
        wait_for("round trips of the links", lambda: len(driver.find_elements("css selector", "tr[data-link]")) == 6)
        print("page live through nginx, 3 nodes up, 6 links", flush=True)

        for name in TASKS:
            status, body = http("POST", nginx.url("/api/tasks"),
                                {"name": name, "module": "hypha_tasks", "function": "steps",
                                 "args": f"[{STEPS}, {STEP_MS}]", "restart": True})
            if status != 201:
                raise Failure(f"POST /api/tasks {name}: {status} {body}")
        wait_for("the three tasks running on the page",
                 lambda: {k: v["data-status"] for k, v in tasks_on_page(driver).items()} == {t: "running" for t in TASKS})
        a, b = progress_moves(driver, TASKS[0])
        print(f"progress bar of {TASKS[0]} moved {a}% -> {b}% without a reload", flush=True)
        wait_for("the tasks' names in the registry view", lambda: task_names_in_registry(driver) == set(TASKS))
        driver.save_screenshot(os.path.join(args.out, "dashboard.png"))

        via = text(driver, "via")
        if via not in procs:
            raise Failure(f"the page says it is served by {via!r}")
        before = tasks_on_page(driver)
        killed_at = time.monotonic()
        procs[via].kill()
        print(f"kill -9 {via} (it served the page's stream; its tasks: "
              f"{sorted(t for t, r in before.items() if r['data-node'] == via)})", flush=True)

        new_via = wait_for("the page to reconnect to another node",
                           lambda: conn_state(driver) == "live" and (v := text(driver, "via")) != via and v, timeout=30)
        reconnected = time.monotonic() - killed_at
        print(f"reconnected through nginx to {new_via} in {reconnected:.2f} s", flush=True)
        wait_for(f"{via} down on the page", lambda: nodes_on_page(driver).get(via) == "down", timeout=30)
        wait_for("2 of 3 nodes up", lambda: text(driver, "counts") == "2 of 3 nodes up")
        after = tasks_on_page(driver)
        if set(after) != set(before):
            raise Failure(f"tasks before the kill {sorted(before)}, after {sorted(after)}")
        driver.save_screenshot(os.path.join(args.out, "dashboard-reconnected.png"))

        survivor_task = next((t for t, r in after.items() if r["data-node"] != via and r["data-status"] == "running"), None)
        if survivor_task:
            a, b = progress_moves(driver, survivor_task)
            print(f"after the reconnect {survivor_task}'s bar moved {a}% -> {b}%", flush=True)
        done = wait_for("every task done, none on the dead node", lambda: (t := tasks_on_page(driver)) and all(
            r["data-status"] == "done" and r["data-progress"] == "100" and r["data-node"] != via for r in t.values())
            and set(t) == set(TASKS) and t, timeout=STEPS * STEP_MS / 1000 * 2 + 30)
        print("all done on the page: " + ", ".join(f"{k} on {v['data-node']}" for k, v in sorted(done.items())), flush=True)
        wait_for("the ended tasks' names gone from the registry view", lambda: not task_names_in_registry(driver))
        status, body = http("GET", nginx.url("/api/tasks"))
        api = {t["name"]: t["status"] for t in body["tasks"]} if status == 200 else body
        if api != {t: "done" for t in TASKS}:
            raise Failure(f"GET /api/tasks through nginx after the run: {status} {api}")
        driver.save_screenshot(os.path.join(args.out, "dashboard-done.png"))

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/api/events" not in e["message"]]
        if errors:
            raise Failure(f"errors in the page's console: {errors}")
        print("e2e.dashboard: passed", flush=True)
    except Failure as e:
        if driver:
            driver.save_screenshot(os.path.join(args.out, "failure.png"))
            raise Failure(f"{e}\n  page: conn={conn_state(driver)} via={text(driver, 'via')} counts={text(driver, 'counts')!r}"
                          f"\n  nodes={nodes_on_page(driver)}\n  tasks={tasks_on_page(driver)}"
                          f"\n  console={driver.get_log('browser')}") from None
        raise
    finally:
        stop_all(driver, nginx, nodes)


if __name__ == "__main__":
    e2e_main("e2e.dashboard", run)

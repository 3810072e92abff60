#!/usr/bin/env python3
"""A userspace stand-in for `tc netem delay` on kernels built without sch_netem.

Creates one TUN device per node (NAME_PREFIX + index), prints "ready" and then forwards IPv4
packets between them: a packet that node i sends to 10.77.0.j leaves tun i, waits DELAY_i ms
(node i's egress delay, like netem on its interface) and is written into tun j. The caller moves
each TUN device into its node's network namespace and gives it 10.77.0.i/24 (the device keeps
working: the file descriptor stays with this process). Runs until SIGTERM/SIGINT.

usage: p2p_delayline.py NAME_PREFIX DELAY_1_MS DELAY_2_MS ...
"""
import fcntl
import heapq
import itertools
import os
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    prefix = sys.argv[1]
    delays = [float(d) / 1000.0 for d in sys.argv[2:]]
    fds = [open_tun(f"{prefix}{i + 1}") for i in range(len(delays))]
    node_of_fd = {fd: i for i, fd in enumerate(fds)}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    queue = []  # (due, seq, destination fd, packet)
    seq = itertools.count()
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, dst, pkt = heapq.heappop(queue)
            try:
                os.write(dst, pkt)
            except OSError:
                pass  # the device is down (its namespace is going away): the packet is lost
        timeout_ms = max(0, (queue[0][0] - now) * 1000) if queue else 1000
        for fd, _ in poller.poll(timeout_ms):
            while True:
                try:
                    pkt = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if len(pkt) < 20 or pkt[0] >> 4 != 4:
                    continue  # IPv4 only
                dst_ip = pkt[16:20]
                j = dst_ip[3] - 1
                if dst_ip[:3] != bytes([10, 77, 0]) or not 0 <= j < len(fds):
                    continue
                due = time.monotonic() + delays[node_of_fd[fd]]
                heapq.heappush(queue, (due, next(seq), fds[j], pkt))


if __name__ == "__main__":
    main()

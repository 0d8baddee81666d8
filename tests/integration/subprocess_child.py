#!/usr/bin/env python3
"""A child for the `subprocess` processor and exporter (docs/subprocess.md), with
faults on demand, for tests/integration/test_subprocess.py.

It answers the router's hello, then each DATA request with the same payload as one
DATA frame (processor mode) or by appending it to SP_SINK (exporter mode), and an
ACK. Faults, each at most SP_<FAULT>_TIMES times over all its restarts (counted
with files in SP_STATE, so that a restarted child carries on normally):

  SP_CRASH_AFTER=K  abort() (SIGABRT) on receiving the request after the K-th
  SP_LEAK_AFTER=K   after K requests, allocate until the memory limit stops it
                    (MemoryError: it exits with status 1)
  SP_HANG=1         never answer the first request it gets
  SP_SPIN=1         spin on the first request it gets (for limits.cpu_seconds)
  SP_BAD_HELLO=1    answer the hello with another protocol's name

and, without a limit of times, SP_NACK_EVERY=N: refuse (NACK) every N-th request;
SP_DELAY_MS=N: take N ms over each request.
"""
import os
import struct
import sys
import time

HELLO, DATA, ACK, NACK = 1, 2, 3, 4
VERSION = b"switchyard-subprocess/1"

inp = sys.stdin.buffer
out = sys.stdout.buffer
state = os.environ.get("SP_STATE", "/tmp")


def read_exact(n):
    b = inp.read(n)
    if b is None or len(b) < n:
        sys.exit(0)  # EOF: the router is done with us
    return b


def read_frame():
    (length,) = struct.unpack(">I", read_exact(4))
    body = read_exact(length)
    ftype, signal, seq = struct.unpack(">BBQ", body[:10])
    return ftype, signal, seq, body[10:]


def write_frame(ftype, signal, seq, payload=b""):
    out.write(struct.pack(">IBBQ", 10 + len(payload), ftype, signal, seq) + payload)
    out.flush()


def fault_left(name):
    """True (and one use counted) while the fault has uses left."""
    times = int(os.environ.get("SP_%s_TIMES" % name.upper(), "1"))
    for i in range(times):
        try:
            fd = os.open(os.path.join(state, "%s-%d" % (name, i)), os.O_CREAT | os.O_EXCL)
            os.close(fd)
            return True
        except FileExistsError:
            continue
    return False


def main():
    crash_after = int(os.environ.get("SP_CRASH_AFTER", "-1"))
    leak_after = int(os.environ.get("SP_LEAK_AFTER", "-1"))
    hang = os.environ.get("SP_HANG") == "1"
    spin = os.environ.get("SP_SPIN") == "1"
    nack_every = int(os.environ.get("SP_NACK_EVERY", "0"))
    delay = int(os.environ.get("SP_DELAY_MS", "0")) / 1000.0
    sink = os.environ.get("SP_SINK")
    ftype, signal, seq, payload = read_frame()
    if ftype != HELLO or not payload.startswith(VERSION):
        sys.stderr.write("subprocess_child: expected a hello, got type %d\n" % ftype)
        sys.exit(2)
    if os.environ.get("SP_BAD_HELLO") == "1" and fault_left("bad_hello"):
        write_frame(HELLO, signal, 0, b"other-protocol/9")
    else:
        write_frame(HELLO, signal, 0, VERSION + b" subprocess_child.py")
    done = 0
    hoard = []
    while True:
        ftype, signal, seq, payload = read_frame()
        if ftype != DATA:
            write_frame(NACK, 0, seq, b"unexpected frame type %d" % ftype)
            continue
        if crash_after >= 0 and done >= crash_after and fault_left("crash"):
            os.abort()
        if hang and fault_left("hang"):
            while inp.read(1 << 16):  # keep reading, never answer
                pass
            sys.exit(0)
        if spin and fault_left("spin"):
            while True:
                pass
        if nack_every and (done + 1) % nack_every == 0:
            write_frame(NACK, 0, seq, b"refused by SP_NACK_EVERY")
            done += 1
            continue
        if leak_after >= 0 and done >= leak_after and fault_left("leak"):
            while True:
                hoard.append(bytearray(8 << 20))
        if delay:
            time.sleep(delay)
        if sink:
            with open(sink, "ab") as f:
                f.write(struct.pack(">I", len(payload)) + payload)
        else:
            write_frame(DATA, signal, seq, payload)
        write_frame(ACK, 0, seq)
        done += 1


if __name__ == "__main__":
    main()

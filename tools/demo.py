# make run: a real program (python3) on ebbmalloc, in phases, with what the
# allocator did after each phase, read through its own statistics API.
import ctypes
import os
import re
import time

# The fields of struct ebb_stats, read from the header (EBB_STATS_FIELDS),
# so that this script always matches the library it runs on.
HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "include", "ebbmalloc.h")
FIELDS = re.findall(r"^\s*X\((\w+),", open(HEADER).read(), re.M)


class Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in FIELDS]


lib = ctypes.CDLL(None)
try:
    get_stats = lib.ebb_stats_get
    trim = lib.malloc_trim
except AttributeError:
    raise SystemExit("ebbmalloc is not loaded: run through `make run`")


def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mib(n):
    return "%8.1f" % (n / 1048576.0)


print("%-34s %8s %8s %8s %8s %10s %6s %7s" % (
    "phase", "in use", "freed", "reclaim", "RSS", "mallocs", "munmap", "madvise"))
print("%-34s %8s %8s %8s %8s" % ("", "MiB", "MiB", "ed MiB", "MiB"))


def show(phase):
    time.sleep(0.25)  # a moment for each phase on ebb's timeline
    s = Stats()
    get_stats(ctypes.byref(s))
    print("%-34s %s %s %s %s %10d %6d %7d" % (
        phase, mib(s.in_use), mib(s.freed_retained), mib(s.reclaimed_total), mib(resident()),
        s.malloc_calls, s.os_munmap, s.os_madvise))


show("start")
objects = [{"id": i, "name": "object %d" % i, "tags": [i, i + 1]} for i in range(300000)]
show("300k small objects built")
buffers = [bytearray(4 << 20) for _ in range(40)]
show("40 buffers of 4 MiB (huge blocks)")
del buffers
show("buffers freed (mappings returned)")
del objects
show("small objects freed")
time.sleep(0.3)
show("0.5 s later: reclaimed, no call")
trim(0)
show("malloc_trim(0)")
again = [str(i) * 3 for i in range(200000)]
show("200k strings (memory reused)")

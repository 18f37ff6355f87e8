# make run: a real program (python3) on ebbmalloc, in phases, with what the
# allocator did after each phase, read through its own statistics API.
import ctypes
import os

FIELDS = ["in_use", "in_use_blocks", "huge_in_use", "mapped", "segments", "huge_blocks",
          "metadata", "malloc_calls", "free_calls", "os_mmap", "os_munmap", "os_madvise",
          "os_mremap", "os_brk"]


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


print("%-34s %8s %8s %8s %10s %6s %6s %5s" % (
    "phase", "in use", "mapped", "RSS", "mallocs", "mmap", "munmap", "brk"))
print("%-34s %8s %8s %8s" % ("", "MiB", "MiB", "MiB"))


def show(phase):
    s = Stats()
    get_stats(ctypes.byref(s))
    print("%-34s %s %s %s %10d %6d %6d %5d" % (
        phase, mib(s.in_use), mib(s.mapped), mib(resident()), s.malloc_calls,
        s.os_mmap, s.os_munmap, s.os_brk))


show("start")
objects = [{"id": i, "name": "object %d" % i, "tags": [i, i + 1]} for i in range(300000)]
show("300k small objects built")
buffers = [bytearray(4 << 20) for _ in range(40)]
show("40 buffers of 4 MiB (huge blocks)")
del buffers
show("buffers freed (mappings returned)")
del objects
show("small objects freed")
trim(0)
show("malloc_trim(0)")
again = [str(i) * 3 for i in range(200000)]
show("200k strings (memory reused)")

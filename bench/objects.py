"""bench/objects.py -- an object-heavy Python program, to run CPython on
an allocator.

    PYTHONMALLOC=malloc PYTHONHASHSEED=0 /usr/bin/python3 -S bench/objects.py [SCALE]

PYTHONMALLOC=malloc makes CPython call malloc/realloc/free for every object
(instead of its own pymalloc arenas), so the preloaded allocator does all
the work.  Each round (SCALE rounds, default 10) does what Python programs
spend their allocations on:

  records   builds 4000 JSON-like records (dicts of str, int, float, lists
            and tuples), indexes them in dicts by key and by group, then
            queries, updates and deletes through the indexes;
  text      formats, splits, joins and slices strings, and counts words in
            a dict;
  sort      sorts lists of tuples and of instances by several keys;
  objects   builds linked structures of class instances (each with a
            __dict__) -- trees, and graphs with reference cycles that only
            the cycle collector frees -- and walks them;
  numbers   big-integer arithmetic (factorial-like products and sums) and
            float lists.

Everything is driven by a seeded linear congruential generator, and the
result of each step is folded into a 64-bit checksum (never from id(),
hash() of str, or set order), so the output line depends only on SCALE:

    objects scale=N checksum=0x...
"""
import gc
import sys

MASK = (1 << 64) - 1


class Rng:
    __slots__ = ("s",)

    def __init__(self, seed):
        self.s = (seed * 6364136223846793005 + 1442695040888963407) & MASK

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & MASK
        return self.s >> 33

    def below(self, n):
        return self.next() % n


class Sum:
    def __init__(self):
        self.v = 0xCBF29CE484222325

    def add(self, x):
        self.v = ((self.v ^ (x & MASK)) * 0x100000001B3) & MASK
        self.v ^= self.v >> 29

    def add_str(self, s):
        h = 0
        for ch in s[:64]:
            h = (h * 131 + ord(ch)) & MASK
        self.add(h ^ len(s))


WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi "
         "omicron pi rho sigma tau upsilon phi chi psi omega").split()


def records(r, cs):
    recs = []
    by_key = {}
    by_group = {}
    for i in range(4000):
        k = "k%06d" % r.below(1000000)
        rec = {
            "id": i,
            "key": k,
            "group": r.below(97),
            "score": r.below(100000) / 7.0,
            "tags": [WORDS[r.below(len(WORDS))] for _ in range(1 + r.below(6))],
            "pos": (r.below(1000), r.below(1000)),
            "meta": {"owner": WORDS[r.below(len(WORDS))], "rev": r.below(50)},
        }
        recs.append(rec)
        by_key[k] = rec
        by_group.setdefault(rec["group"], []).append(rec)
    for _ in range(3000):
        k = "k%06d" % r.below(1000000)
        rec = by_key.get(k)
        if rec is not None:
            rec["meta"]["rev"] += 1
            rec["tags"].append("hit")
            cs.add(rec["id"])
    for g in sorted(by_group):
        members = by_group[g]
        total = sum(m["score"] for m in members)
        cs.add(int(total * 1000))
        cs.add(len(members))
    for rec in recs[::3]:
        by_key.pop(rec["key"], None)
    cs.add(len(by_key))
    cs.add(sum(len(rec["tags"]) for rec in by_key.values()))


def text(r, cs):
    lines = []
    for i in range(3000):
        n = 3 + r.below(12)
        words = [WORDS[r.below(len(WORDS))] for _ in range(n)]
        lines.append("%d: %s (%s)" % (i, " ".join(words), "-".join(w[:3] for w in words[:4])))
    doc = "\n".join(lines)
    counts = {}
    for line in doc.split("\n"):
        head, _, rest = line.partition(": ")
        for w in rest.split():
            w = w.strip("()")
            counts[w] = counts.get(w, 0) + 1
    for w in sorted(counts):
        cs.add(counts[w])
        cs.add_str(w)
    up = doc.upper().replace("ALPHA", "a").split("\n")
    cs.add(sum(len(x) for x in up))
    cs.add_str("".join(up[::50]))


class Item:
    def __init__(self, a, b, name):
        self.a = a
        self.b = b
        self.name = name


def sorting(r, cs):
    rows = [(r.below(1000), "s%05d" % r.below(100000), r.below(1 << 30)) for _ in range(20000)]
    rows.sort()
    cs.add(rows[0][2] ^ rows[-1][2] ^ rows[len(rows) // 2][2])
    rows.sort(key=lambda t: (t[1], -t[0]))
    cs.add_str(rows[0][1] + rows[-1][1])
    items = [Item(t[0], t[2], t[1]) for t in rows[:10000]]
    items.sort(key=lambda it: (it.b % 1000, it.name))
    cs.add(items[0].a * 1000003 + items[-1].a)
    cs.add(sum(it.a for it in items[:100]))


class Node:
    def __init__(self, value):
        self.value = value
        self.children = []
        self.parent = None
        self.attrs = {}


def build_tree(r, depth, value):
    n = Node(value)
    if depth > 0:
        for i in range(1 + r.below(4)):
            c = build_tree(r, depth - 1, value * 4 + i)
            c.parent = n          # a cycle: parent <-> child
            n.children.append(c)
    n.attrs["label"] = "node-%d" % value
    return n


def walk(n):
    total = 0
    stack = [n]
    while stack:
        x = stack.pop()
        total = (total * 31 + x.value + len(x.attrs["label"])) & MASK
        stack.extend(x.children)
    return total


def objects(r, cs):
    for _ in range(6):
        t = build_tree(r, 6, 1)
        cs.add(walk(t))
        del t                     # cycles: freed by the collector
    graph = [Node(i) for i in range(5000)]
    for x in graph:
        for _ in range(3):
            y = graph[r.below(len(graph))]
            x.children.append(y)
            x.attrs[y.value] = (x.value, y.value)
    cs.add(sum(len(x.attrs) for x in graph))
    del graph
    cs.add(gc.collect())


def numbers(r, cs):
    p = 1
    for i in range(1, 600 + r.below(200)):
        p *= i * 2 + 1
    cs.add(p % 1000000007)
    cs.add(p.bit_length())
    fib = [0, 1]
    for i in range(1500):
        fib.append(fib[-1] + fib[-2])
    cs.add(fib[-1] % 998244353)
    fl = [r.below(10000) / 3.0 for _ in range(20000)]
    cs.add(int(sum(fl)))
    cs.add(int(sum(x * x for x in fl[::7])))


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    r = Rng(42)
    cs = Sum()
    for _ in range(scale):
        records(r, cs)
        text(r, cs)
        sorting(r, cs)
        objects(r, cs)
        numbers(r, cs)
    print("objects scale=%d checksum=0x%016x" % (scale, cs.v))


main()

# An object-heavy workload for python3: builds and drops large dicts, lists,
# strings and sets in phases, and prints checksums of what it built.
import hashlib


def phase(n, seed):
    d = {}
    for i in range(n):
        key = "k%d-%d" % (seed, i)
        d[key] = [i, str(i * seed), (i, seed), {"v": i % 97}]
    total = 0
    for key, value in d.items():
        total += value[0] + len(value[1]) + value[3]["v"]
    lists = [[j] * (j % 17) for j in range(n // 2)]
    total += sum(len(x) for x in lists)
    s = set(range(0, n * 3, 7))
    total += len(s)
    text = "".join(chr(65 + (i % 26)) for i in range(n))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    del d, lists, s
    return total, digest


for round_no in range(6):
    total, digest = phase(150000 + 20000 * round_no, round_no + 1)
    print(round_no, total, digest)

big = [bytearray(1 << 20) for _ in range(64)]
for i, b in enumerate(big):
    b[i] = i
print(sum(b[i] for i, b in enumerate(big)))
del big
print("done")

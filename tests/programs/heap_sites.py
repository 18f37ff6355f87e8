# A Python program with a few large allocation sites of its own (the JSON
# encoder's join, a list's growth, dicts), for the heap profiler's
# comparison with heaptrack (tests/scripts/test_heaptrack.sh).
import json

data = [{"k": i, "v": "x" * (i % 100), "l": list(range(i % 20))} for i in range(200000)]
text = json.dumps(data)
back = json.loads(text)
table = {i: str(i) * 3 for i in range(300000)}
print(len(text), len(back), len(table))

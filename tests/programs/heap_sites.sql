-- SQLite with its table, index and sorter in memory, for the heap
-- profiler's comparison with heaptrack (tests/scripts/test_heaptrack.sh).
CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO t SELECT i, printf('row %d %s', i, hex(randomblob(16))), i * 0.5 FROM n;
CREATE INDEX tb ON t(b);
SELECT count(*), sum(length(b)) FROM t;
SELECT substr(b, 1, 6) AS k, count(*) FROM t GROUP BY k ORDER BY 2 DESC LIMIT 3;

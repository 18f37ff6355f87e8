# Folded stacks (outermost frame first, frames split by ";", then the
# bytes) to sites: a stack's site is its innermost frame that has a name
# (not an address, not FILE+0xOFFSET: a static function of a stripped
# file, which heaptrack and ebb name differently), its " (file.c)" cut.
# Prints "BYTES SITE" a site, and "BYTES TOTAL".
{
    bytes = $NF
    line = $0
    sub(/ [0-9]+$/, "", line)
    n = split(line, frame, ";")
    site = "(unnamed)"
    for (i = n; i >= 1; i--) {
        name = frame[i]
        sub(/ \(.*\)$/, "", name)
        if (name ~ /^0x[0-9a-f]+$/ || name ~ /\+0x[0-9a-f]+$/ || name == "?" || name == "??" || name == "")
            continue
        site = name
        break
    }
    sum[site] += bytes
    total += bytes
}
END {
    for (s in sum)
        printf "%d %s\n", sum[s], s
    printf "%d TOTAL\n", total
}

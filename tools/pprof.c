/* pprof's profile format (github.com/google/pprof, proto/profile.proto):
 * a protocol buffer that `go tool pprof` and other tools read, written
 * uncompressed (pprof reads it so, or gzipped).  Only what a heap profile
 * needs: sample types, samples, locations with one line each, functions
 * and the string table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebb.h"

/* profile.proto's field numbers. */
enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_TIME_NANOS = 9,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,
    VALUE_TYPE_TYPE = 1,
    VALUE_TYPE_UNIT = 2,
    SAMPLE_LOCATION_ID = 1,
    SAMPLE_VALUE = 2,
    MAPPING_ID = 1,
    MAPPING_MEMORY_START = 2,
    MAPPING_MEMORY_LIMIT = 3,
    MAPPING_FILE_OFFSET = 4,
    MAPPING_FILENAME = 5,
    MAPPING_HAS_FUNCTIONS = 7,
    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_ADDRESS = 3,
    LOCATION_LINE = 4,
    LINE_FUNCTION_ID = 1,
    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
};

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

typedef struct {
    unsigned char *p;
    size_t n, cap;
} pbuf_t;

static void put_byte(pbuf_t *b, unsigned char c)
{
    b->p = ebb_grow(b->p, &b->cap, b->n + 1, 1);
    b->p[b->n++] = c;
}

static void put_varint(pbuf_t *b, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        put_byte(b, (unsigned char)(v | 0x80));
    put_byte(b, (unsigned char)v);
}

static void put_key(pbuf_t *b, unsigned field, unsigned wire)
{
    put_varint(b, (uint64_t)field << 3 | wire);
}

/* A number; proto3 leaves zeros out. */
static void put_uint(pbuf_t *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    put_key(b, field, WIRE_VARINT);
    put_varint(b, v);
}

static void put_bytes(pbuf_t *b, unsigned field, const void *data, size_t len)
{
    put_key(b, field, WIRE_BYTES);
    put_varint(b, len);
    b->p = ebb_grow(b->p, &b->cap, b->n + len, 1);
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

/* A nested message, moved into its parent and emptied for the next. */
static void put_message(pbuf_t *b, unsigned field, pbuf_t *sub)
{
    put_bytes(b, field, sub->p, sub->n);
    sub->n = 0;
}

static uint64_t intern(ebb_index_t *strings, const char *s)
{
    return ebb_index_of(strings, s, 0, true);
}

static void put_value_type(pbuf_t *b, unsigned field, ebb_index_t *t, const char *type, const char *unit, pbuf_t *sub)
{
    put_uint(sub, VALUE_TYPE_TYPE, intern(t, type));
    put_uint(sub, VALUE_TYPE_UNIT, intern(t, unit));
    put_message(b, field, sub);
}

int ebb_pprof_write(const char *file, const ebb_pprof_stack_t *stacks, size_t count, const ebb_pprof_map_t *maps,
                    size_t nmaps, uint64_t rate, uint64_t time_ns)
{
    static const char *const types[EBB_PPROF_VALUES][2] = {
        {"alloc_space", "bytes"}, {"inuse_space", "bytes"}, {"peak_space", "bytes"}, {"kept_space", "bytes"}};
    ebb_index_t strings = {0}, locations = {0}, functions = {0};
    const char **location_name = NULL; /* by location index */
    size_t name_cap = 0;
    intern(&strings, "");
    pbuf_t out = {0}, sub = {0}, line = {0}, packed = {0};
    for (unsigned v = 0; v < EBB_PPROF_VALUES; v++)
        put_value_type(&out, PROFILE_SAMPLE_TYPE, &strings, types[v][0], types[v][1], &sub);

    for (size_t s = 0; s < count; s++) {
        const ebb_pprof_stack_t *st = &stacks[s];
        bool any = false;
        for (unsigned v = 0; v < EBB_PPROF_VALUES; v++)
            any |= st->value[v] != 0;
        if (!any)
            continue;
        /* The leaf first, as the stack is kept; ids are indexes + 1. */
        unsigned frames = st->count > 0 ? st->count : 1;
        for (unsigned i = 0; i < frames; i++) {
            uintptr_t addr = st->count ? st->addr[i] : 0;
            size_t before = locations.n;
            uint64_t id = ebb_index_of(&locations, NULL, addr, false) + 1;
            if (locations.n > before) {
                location_name = ebb_grow(location_name, &name_cap, locations.n, sizeof *location_name);
                location_name[id - 1] = st->count ? st->name[i] : "(no stack)";
            }
            put_varint(&packed, id);
        }
        put_bytes(&sub, SAMPLE_LOCATION_ID, packed.p, packed.n);
        packed.n = 0;
        for (unsigned v = 0; v < EBB_PPROF_VALUES; v++)
            put_varint(&packed, st->value[v]);
        put_bytes(&sub, SAMPLE_VALUE, packed.p, packed.n);
        packed.n = 0;
        put_message(&out, PROFILE_SAMPLE, &sub);
    }

    /* The mappings of the program's files (the first: its executable);
     * the functions are named already. */
    for (size_t m = 0; m < nmaps; m++) {
        put_uint(&sub, MAPPING_ID, m + 1);
        put_uint(&sub, MAPPING_MEMORY_START, maps[m].start);
        put_uint(&sub, MAPPING_MEMORY_LIMIT, maps[m].end);
        put_uint(&sub, MAPPING_FILE_OFFSET, maps[m].offset);
        put_uint(&sub, MAPPING_FILENAME, intern(&strings, maps[m].path));
        put_uint(&sub, MAPPING_HAS_FUNCTIONS, 1);
        put_message(&out, PROFILE_MAPPING, &sub);
    }

    /* A function per name; a location per address, its one line in it. */
    for (size_t i = 0; i < locations.n; i++) {
        size_t before = functions.n;
        uint64_t fid = ebb_index_of(&functions, location_name[i], 0, true) + 1;
        if (functions.n > before) {
            uint64_t name = intern(&strings, location_name[i]);
            put_uint(&sub, FUNCTION_ID, fid);
            put_uint(&sub, FUNCTION_NAME, name);
            put_uint(&sub, FUNCTION_SYSTEM_NAME, name);
            put_message(&out, PROFILE_FUNCTION, &sub);
        }
        put_uint(&line, LINE_FUNCTION_ID, fid);
        put_uint(&sub, LOCATION_ID, i + 1);
        for (size_t m = 0; m < nmaps; m++)
            if (locations.addr[i] >= maps[m].start && locations.addr[i] < maps[m].end)
                put_uint(&sub, LOCATION_MAPPING_ID, m + 1);
        put_uint(&sub, LOCATION_ADDRESS, locations.addr[i]);
        put_message(&sub, LOCATION_LINE, &line);
        put_message(&out, PROFILE_LOCATION, &sub);
    }

    put_uint(&out, PROFILE_TIME_NANOS, time_ns);
    put_value_type(&out, PROFILE_PERIOD_TYPE, &strings, "space", "bytes", &sub);
    put_uint(&out, PROFILE_PERIOD, rate);
    put_uint(&out, PROFILE_DEFAULT_SAMPLE_TYPE, intern(&strings, "inuse_space"));
    for (size_t i = 0; i < strings.n; i++)
        put_bytes(&out, PROFILE_STRING_TABLE, strings.str[i], strlen(strings.str[i]));

    int rc = 0;
    FILE *f = fopen(file, "wb");
    if (f == NULL || fwrite(out.p, 1, out.n, f) != out.n) {
        perror(file);
        rc = 1;
    }
    if (f != NULL && fclose(f) != 0 && rc == 0) {
        perror(file);
        rc = 1;
    }
    free(out.p);
    free(sub.p);
    free(line.p);
    free(packed.p);
    ebb_index_free(&strings);
    ebb_index_free(&locations);
    ebb_index_free(&functions);
    free(location_name);
    return rc;
}

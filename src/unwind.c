/* Call stacks for the heap profiler (profile.c).
 *
 * The C runtime's unwinder (libgcc_s's _Unwind_Backtrace) reads each
 * frame's call frame information (DWARF CFI, in .eh_frame) afresh: about
 * 2,000 instructions a frame, most of what a sample costs.  On x86-64 a
 * walk needs three rules at each return address: where the frame's CFA
 * is (rsp or rbp, plus an offset), where the caller's return address is
 * (at a fixed offset from the CFA), and where the caller's rbp was saved
 * (or that it was left alone).  So they are worked out once per return
 * address, by a small interpreter of the CFI that compilers emit, and
 * cached; a walk is then a table lookup and two loads a frame.
 *
 * Anything else sends the whole walk to libgcc, so a stack is never wrong
 * for want of a rule: a rule the interpreter does not know (an expression,
 * a register saved in another register), a signal frame (its CIE says
 * 'S'), an address in no loaded object (JIT code, which registers its
 * frames with libgcc), an .eh_frame_hdr without its sorted table, a CFA
 * that does not move up the stack.  A library unloaded (dl_iterate_phdr's
 * count of removals moved) empties the cache: another may be loaded where
 * it was.  The walk ends where the CFI says the return address is
 * undefined (the outermost frame of the main thread and of every thread),
 * as libgcc's does.
 *
 * Nothing here calls malloc: the cache is a mapping of its own, made when
 * profiling starts (ebbi_unwind_load, from the library's constructor),
 * and libgcc is found in the process or loaded then.
 */
#define _GNU_SOURCE
#include <dlfcn.h> /* DLFO_STRUCT_HAS_EH_DBASE: the loader has _dl_find_object */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* ---- a walk's frames ------------------------------------------------------------- */

typedef struct {
    uintptr_t *frames;
    unsigned n, max;
    bool keep_self;
} walk_t;

/* A return address found: kept, unless it is still the allocator's.
 * False once the walk should stop. */
static bool walk_add(void *arg, uintptr_t ip)
{
    walk_t *w = arg;
    if (w->n == 0 && !w->keep_self && ebbi_os_self_code(ip))
        return true; /* still inside the allocator */
    if (w->n == w->max)
        return false;
    w->frames[w->n++] = ip;
    return true;
}

/* Held wherever a walk may take a lock of the loader's or of libgcc's
 * (dl_iterate_phdr's, libgcc's of the frames JIT code registered), and
 * for the rule table's inserts.  fork's prepare handler takes it before
 * any other lock of ours (init.c): a fork then never copies the process
 * while one of our walks holds such a lock, which the child would find
 * held for ever.  First, because libgcc's walk may call malloc (to sort
 * registered frames), and so take any lock of ours, under it. */
static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- the rules of a return address ------------------------------------------------ */

#if defined(__x86_64__) && defined(DLFO_STRUCT_HAS_EH_DBASE)
#define FAST_WALK 1

/* x86-64's DWARF register numbers. */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* A register's rule: unchanged (the caller's value is the callee's), at
 * CFA + offset, undefined (the return address of the outermost frame),
 * or something the fast walk does not follow. */
enum { RULE_SAME, RULE_AT, RULE_UNDEFINED, RULE_OTHER };

typedef struct {
    uint8_t cfa_reg;  /* REG_RSP or REG_RBP; else the CFA is not followed */
    bool cfa_other;   /* an expression */
    int64_t cfa_off;
    uint8_t rbp, ra;  /* rules */
    int64_t rbp_off, ra_off;
} frame_rules_t;

/* A rule packed in a cache slot's word: the CFA's offset (bits 0-31),
 * the return address's offset from the CFA (32-43) and rbp's (44-58),
 * signed; flags above.  PACK_NONE: no rule the fast walk follows (known,
 * so that libgcc's walk is taken without a second look). */
#define PACK_NONE (UINT64_C(1) << 59)
#define PACK_RBP_SAVED (UINT64_C(1) << 60)
#define PACK_CFA_RBP (UINT64_C(1) << 61)
#define PACK_END (UINT64_C(1) << 62)
#define PACK_VALID (UINT64_C(1) << 63)

static bool rules_pack(const frame_rules_t *r, uint64_t *out)
{
    if (r->ra == RULE_UNDEFINED) {
        *out = PACK_VALID | PACK_END;
        return true;
    }
    if (r->cfa_other || (r->cfa_reg != REG_RSP && r->cfa_reg != REG_RBP) || r->ra != RULE_AT ||
        (r->rbp != RULE_SAME && r->rbp != RULE_AT) || r->cfa_off < INT32_MIN || r->cfa_off > INT32_MAX ||
        r->ra_off < -2048 || r->ra_off > 2047 || r->rbp_off < -16384 || r->rbp_off > 16383)
        return false;
    *out = PACK_VALID | (r->cfa_reg == REG_RBP ? PACK_CFA_RBP : 0) | (r->rbp == RULE_AT ? PACK_RBP_SAVED : 0) |
           (uint64_t)(uint32_t)(int32_t)r->cfa_off | ((uint64_t)r->ra_off & 0xfff) << 32 |
           ((uint64_t)r->rbp_off & 0x7fff) << 44;
    return true;
}

static inline int32_t packed_cfa_off(uint64_t w)
{
    return (int32_t)(uint32_t)w;
}

static inline int32_t packed_ra_off(uint64_t w)
{
    int32_t v = (int32_t)((w >> 32) & 0xfff);
    return v >= 2048 ? v - 4096 : v;
}

static inline int32_t packed_rbp_off(uint64_t w)
{
    int32_t v = (int32_t)((w >> 44) & 0x7fff);
    return v >= 16384 ? v - 32768 : v;
}

/* ---- reading .eh_frame ------------------------------------------------------------ */

typedef struct {
    const uint8_t *p, *end;
    bool bad;
} reader_t;

static uint8_t read_u8(reader_t *r)
{
    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static uint64_t read_fixed(reader_t *r, unsigned bytes)
{
    if ((size_t)(r->end - r->p) < bytes) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, bytes); /* little-endian */
    r->p += bytes;
    return v;
}

static void skip(reader_t *r, uint64_t bytes)
{
    if (bytes > (size_t)(r->end - r->p))
        r->bad = true;
    else
        r->p += bytes;
}

static uint64_t read_uleb(reader_t *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t b = read_u8(r);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static int64_t read_sleb(reader_t *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = read_u8(r);
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while ((b & 0x80) && shift < 64 && !r->bad);
    if (shift < 64 && (b & 0x40))
        v |= ~UINT64_C(0) << shift;
    return (int64_t)v;
}

#define PE_OMIT 0xff
#define PE_PCREL 0x10
#define PE_DATAREL 0x30

/* A pointer in the encoding `enc` (DW_EH_PE_*): relative to its own place
 * or to `data` (the .eh_frame_hdr), never indirect. */
static uintptr_t read_encoded(reader_t *r, uint8_t enc, uintptr_t data)
{
    uintptr_t at = (uintptr_t)r->p, v;
    switch (enc & 0x0f) {
    case 0x00: v = (uintptr_t)read_fixed(r, 8); break;
    case 0x01: v = (uintptr_t)read_uleb(r); break;
    case 0x02: v = (uintptr_t)read_fixed(r, 2); break;
    case 0x03: v = (uintptr_t)read_fixed(r, 4); break;
    case 0x04: v = (uintptr_t)read_fixed(r, 8); break;
    case 0x09: v = (uintptr_t)read_sleb(r); break;
    case 0x0a: v = (uintptr_t)(int64_t)(int16_t)read_fixed(r, 2); break;
    case 0x0b: v = (uintptr_t)(int64_t)(int32_t)read_fixed(r, 4); break;
    case 0x0c: v = (uintptr_t)read_fixed(r, 8); break;
    default: r->bad = true; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case PE_PCREL: v += at; break;
    case PE_DATAREL: v += data; break;
    default: r->bad = true;
    }
    if (enc & 0x80)
        r->bad = true; /* indirect: only personality routines, skipped */
    return v;
}

/* A CIE's fields the FDEs need, and its initial instructions. */
typedef struct {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    bool has_aug_data;
    const uint8_t *insns, *insns_end;
} cie_t;

static bool cie_parse(const uint8_t *at, cie_t *cie)
{
    reader_t r = {at, at + 8, false};
    uint32_t len = (uint32_t)read_fixed(&r, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    r.end = at + 4 + len;
    if (read_fixed(&r, 4) != 0) /* the CIE id */
        return false;
    uint8_t version = read_u8(&r);
    if (version != 1 && version != 3)
        return false;
    const char *aug = (const char *)r.p;
    size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
    r.p += aug_len + 1;
    cie->code_align = read_uleb(&r);
    cie->data_align = read_sleb(&r);
    uint64_t ra_reg = version == 1 ? read_u8(&r) : read_uleb(&r);
    if (ra_reg != REG_RA)
        return false;
    cie->fde_enc = 0; /* absolute, 8 bytes */
    cie->has_aug_data = aug[0] == 'z';
    if (cie->has_aug_data) {
        uint64_t data_len = read_uleb(&r);
        if (data_len > (size_t)(r.end - r.p))
            return false;
        const uint8_t *data_end = r.p + data_len;
        for (size_t i = 1; i < aug_len && !r.bad; i++) {
            switch (aug[i]) {
            case 'R': cie->fde_enc = read_u8(&r); break;
            case 'L': (void)read_u8(&r); break;
            case 'P': {
                uint8_t enc = read_u8(&r);
                (void)read_encoded(&r, enc & 0x7f, 0); /* its size; the routine itself is not read */
                break;
            }
            default: return false; /* 'S', a signal frame; or one not known */
            }
        }
        r.p = data_end;
    } else if (aug_len != 0) {
        return false;
    }
    if (r.bad || r.p > r.end)
        return false;
    cie->insns = r.p;
    cie->insns_end = r.end;
    return true;
}

/* A register's rule changed: kept for rbp and the return address, the
 * only registers a walk restores. */
static void set_rule(frame_rules_t *rules, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == REG_RBP) {
        rules->rbp = how;
        rules->rbp_off = off;
    } else if (reg == REG_RA) {
        rules->ra = how;
        rules->ra_off = off;
    }
}

/* A register back to the rule the CIE's program gave it. */
static void restore_rule(frame_rules_t *rules, uint64_t reg, const frame_rules_t *initial)
{
    if (reg == REG_RBP)
        set_rule(rules, reg, initial->rbp, initial->rbp_off);
    else if (reg == REG_RA)
        set_rule(rules, reg, initial->ra, initial->ra_off);
}

/* Run CFA instructions up to `target` (from `loc`), as the CIE's then the
 * FDE's program: the rules at `target`.  `initial` is what the CIE's
 * program left, for DW_CFA_restore.  False on an opcode not known. */
#define STATE_STACK 8

static bool cfa_run(const uint8_t *p, const uint8_t *end, const cie_t *cie, uintptr_t loc, uintptr_t target,
                    frame_rules_t *rules, const frame_rules_t *initial)
{
    reader_t r = {p, end, false};
    frame_rules_t saved[STATE_STACK];
    unsigned depth = 0;
    while (r.p < r.end && !r.bad) {
        uint8_t op = read_u8(&r);
        uint64_t reg = op & 0x3f, advance = 0;
        switch (op >> 6) {
        case 1: advance = reg * cie->code_align; break;
        case 2: /* offset */
            set_rule(rules, reg, RULE_AT, (int64_t)read_uleb(&r) * cie->data_align);
            continue;
        case 3: /* restore */
            if (initial == NULL)
                return false;
            restore_rule(rules, reg, initial);
            continue;
        default:
            break;
        }
        if (advance == 0) {
            switch (op) {
            case 0x00: /* nop */
                continue;
            case 0x01: /* set_loc */
                loc = read_encoded(&r, cie->fde_enc, 0);
                if (loc > target)
                    return !r.bad;
                continue;
            case 0x02: advance = read_u8(&r) * cie->code_align; break;
            case 0x03: advance = read_fixed(&r, 2) * cie->code_align; break;
            case 0x04: advance = read_fixed(&r, 4) * cie->code_align; break;
            case 0x05: case 0x11: case 0x14: case 0x15: { /* offset_extended(_sf), val_offset(_sf) */
                reg = read_uleb(&r);
                int64_t off = op == 0x05 || op == 0x14 ? (int64_t)read_uleb(&r) * cie->data_align
                                                       : read_sleb(&r) * cie->data_align;
                set_rule(rules, reg, op == 0x05 || op == 0x11 ? RULE_AT : RULE_OTHER, off);
                continue;
            }
            case 0x06: /* restore_extended */
                if (initial == NULL)
                    return false;
                restore_rule(rules, read_uleb(&r), initial);
                continue;
            case 0x07: case 0x08: case 0x09: { /* undefined, same_value, register */
                reg = read_uleb(&r);
                if (op == 0x09)
                    (void)read_uleb(&r);
                set_rule(rules, reg, op == 0x07 ? RULE_UNDEFINED : op == 0x08 ? RULE_SAME : RULE_OTHER, 0);
                continue;
            }
            case 0x0a: /* remember_state */
                if (depth == STATE_STACK)
                    return false;
                saved[depth++] = *rules;
                continue;
            case 0x0b: /* restore_state: the whole row, the CFA's rule too (an
                        * epilogue in mid-function is between the two) */
                if (depth == 0)
                    return false;
                *rules = saved[--depth];
                continue;
            case 0x0c: /* def_cfa */
                rules->cfa_reg = (uint8_t)read_uleb(&r);
                rules->cfa_off = (int64_t)read_uleb(&r);
                rules->cfa_other = false;
                continue;
            case 0x12: /* def_cfa_sf */
                rules->cfa_reg = (uint8_t)read_uleb(&r);
                rules->cfa_off = read_sleb(&r) * cie->data_align;
                rules->cfa_other = false;
                continue;
            case 0x0d: /* def_cfa_register */
                rules->cfa_reg = (uint8_t)read_uleb(&r);
                rules->cfa_other = false;
                continue;
            case 0x0e: /* def_cfa_offset */
                rules->cfa_off = (int64_t)read_uleb(&r);
                continue;
            case 0x13: /* def_cfa_offset_sf */
                rules->cfa_off = read_sleb(&r) * cie->data_align;
                continue;
            case 0x0f: /* def_cfa_expression */
                skip(&r, read_uleb(&r));
                rules->cfa_other = true;
                continue;
            case 0x10: case 0x16: { /* expression, val_expression */
                reg = read_uleb(&r);
                skip(&r, read_uleb(&r));
                set_rule(rules, reg, RULE_OTHER, 0);
                continue;
            }
            case 0x2e: /* GNU_args_size */
                (void)read_uleb(&r);
                continue;
            default:
                return false;
            }
        }
        loc += advance;
        if (loc > target)
            break;
    }
    return !r.bad;
}

/* The rules at `target`, an address in the code of the object whose
 * .eh_frame_hdr is `hdr`. */
static bool rules_at(const uint8_t *hdr, uintptr_t target, frame_rules_t *rules)
{
    if (hdr == NULL || hdr[0] != 1 || hdr[3] != (PE_DATAREL | 0x0b))
        return false; /* no sorted table of 4-byte offsets */
    reader_t r = {hdr + 4, hdr + 4 + 16, false};
    (void)read_encoded(&r, hdr[1], (uintptr_t)hdr); /* .eh_frame itself: not needed */
    uintptr_t count = read_encoded(&r, hdr[2], (uintptr_t)hdr);
    if (r.bad || hdr[2] == PE_OMIT || count == 0)
        return false;
    const int32_t *table = (const int32_t *)(const void *)r.p; /* (start, fde) pairs */
    uintptr_t base = (uintptr_t)hdr;
    if (target < base + (intptr_t)table[0])
        return false;
    size_t lo = 0, hi = count; /* the last entry whose start is at or below target */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (base + (intptr_t)table[2 * mid] <= target)
            lo = mid;
        else
            hi = mid;
    }
    const uint8_t *fde = (const uint8_t *)(base + (intptr_t)table[2 * lo + 1]);
    reader_t f = {fde, fde + 8, false};
    uint32_t len = (uint32_t)read_fixed(&f, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    f.end = fde + 4 + len;
    uint32_t cie_off = (uint32_t)read_fixed(&f, 4);
    cie_t cie;
    if (f.bad || cie_off == 0 || !cie_parse(fde + 4 - cie_off, &cie))
        return false;
    uintptr_t start = read_encoded(&f, cie.fde_enc, 0);
    uintptr_t range = read_encoded(&f, cie.fde_enc & 0x0f, 0);
    if (f.bad || target < start || target - start >= range)
        return false;
    if (cie.has_aug_data)
        skip(&f, read_uleb(&f));
    if (f.bad || f.p > f.end)
        return false;
    frame_rules_t initial = {.cfa_reg = REG_RSP, .cfa_off = 0, .rbp = RULE_SAME, .ra = RULE_SAME};
    if (!cfa_run(cie.insns, cie.insns_end, &cie, start, UINTPTR_MAX, &initial, NULL))
        return false;
    *rules = initial;
    return cfa_run(f.p, f.end, &cie, start, target, rules, &initial);
}

/* ---- the cache ------------------------------------------------------------------ */

/* Slots of (address, rule), open addressing; filled to half at most, a
 * slot never changes once filled (but when all are emptied: a library
 * went), so a reader needs no lock. */
#define RULE_SLOTS 8192u
#define RULE_FILL_MAX (RULE_SLOTS / 2)

typedef struct {
    _Atomic(uintptr_t) addr;
    _Atomic(uint64_t) rule;
} rule_slot_t;

static rule_slot_t *rule_cache;
static unsigned rule_count;
static unsigned long long unloads_seen; /* under walk_lock */

static unsigned rule_hash(uintptr_t a)
{
    return (unsigned)((a * UINT64_C(0x9E3779B97F4A7C15)) >> 51) & (RULE_SLOTS - 1);
}

static uint64_t rule_lookup(uintptr_t addr)
{
    for (unsigned i = rule_hash(addr), probes = 0; probes < RULE_SLOTS; probes++, i = (i + 1) & (RULE_SLOTS - 1)) {
        uintptr_t a = ebbi_load_acquire(&rule_cache[i].addr);
        if (a == addr) {
            /* Still addr's after the rule is read: a slot emptied (a
             * dlclose) and filled again meanwhile would pair addr with
             * another address's rule.  Every rule is stored with release,
             * after the emptying's address store. */
            uint64_t rule = ebbi_load_acquire(&rule_cache[i].rule);
            return ebbi_load_relaxed(&rule_cache[i].addr) == addr ? rule : 0;
        }
        if (a == 0)
            return 0;
    }
    return 0;
}

static void rule_insert(uintptr_t addr, uint64_t rule)
{
    pthread_mutex_lock(&walk_lock);
    if (rule_count < RULE_FILL_MAX) {
        unsigned i = rule_hash(addr);
        while (ebbi_load_relaxed(&rule_cache[i].addr) != 0 && ebbi_load_relaxed(&rule_cache[i].addr) != addr)
            i = (i + 1) & (RULE_SLOTS - 1);
        if (ebbi_load_relaxed(&rule_cache[i].addr) == 0) {
            ebbi_store_release(&rule_cache[i].rule, rule);
            ebbi_store_release(&rule_cache[i].addr, addr); /* the rule before it */
            rule_count++;
        }
    }
    pthread_mutex_unlock(&walk_lock);
}

/* A library unloaded since the last look: every rule goes.  The loader's
 * count is read under walk_lock (dl_iterate_phdr takes the loader's lock:
 * a fork in the middle left a child whose next sample waited for ever). */
static void rules_check_unloads(void)
{
    pthread_mutex_lock(&walk_lock);
    unsigned long long subs = ebbi_os_objects_unloaded();
    if (subs != unloads_seen) {
        for (unsigned i = 0; i < RULE_SLOTS; i++) {
            ebbi_store_relaxed(&rule_cache[i].addr, 0);
            ebbi_store_release(&rule_cache[i].rule, 0);
        }
        rule_count = 0;
        unloads_seen = subs;
    }
    pthread_mutex_unlock(&walk_lock);
}

/* The packed rule at `target`, found or worked out (PACK_NONE: none the
 * fast walk can follow). */
static uint64_t rule_for(uintptr_t target)
{
    uint64_t rule = rule_lookup(target);
    if (rule != 0)
        return rule;
    frame_rules_t rules;
    if (!rules_at(ebbi_os_code_frame_info(target), target, &rules) || !rules_pack(&rules, &rule))
        rule = PACK_VALID | PACK_NONE;
    rule_insert(target, rule);
    return rule;
}

/* The walk from a point in this function (its registers as the asm reads
 * them), or false where it cannot go. */
#define FRAMES_MAX 1024

static EBBI_NOINLINE bool fast_walk(walk_t *w)
{
    uintptr_t pc, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(pc), "=r"(sp), "=r"(bp));
    uintptr_t target = pc; /* this frame's: its own address; a caller's: inside its call */
    for (unsigned steps = 0; steps < FRAMES_MAX; steps++) {
        uint64_t rule = rule_for(target);
        if (rule & PACK_NONE)
            return false;
        if (rule & PACK_END)
            return true;
        uintptr_t cfa = ((rule & PACK_CFA_RBP) ? bp : sp) + (uintptr_t)(intptr_t)packed_cfa_off(rule);
        if (cfa <= sp || cfa - sp > ((uintptr_t)1 << 30))
            return false; /* not up the stack: not a rule to trust */
        uintptr_t ra;
        memcpy(&ra, (const void *)(cfa + (uintptr_t)(intptr_t)packed_ra_off(rule)), sizeof ra);
        if (rule & PACK_RBP_SAVED)
            memcpy(&bp, (const void *)(cfa + (uintptr_t)(intptr_t)packed_rbp_off(rule)), sizeof bp);
        sp = cfa;
        if (ra == 0)
            return true;
        if (!walk_add(w, ra))
            return true;
        target = ra - 1;
    }
    return false;
}
#endif /* __x86_64__ && DLFO_STRUCT_HAS_EH_DBASE */

/* ---- the interface ---------------------------------------------------------------- */

static EBBI_NOINLINE void libgcc_walk(walk_t *w)
{
    pthread_mutex_lock(&walk_lock);
    ebbi_os_unwind(walk_add, w);
    pthread_mutex_unlock(&walk_lock);
}

static bool unwinder;

bool ebbi_unwind_load(void)
{
    unwinder = ebbi_os_unwinder_load();
#ifdef FAST_WALK
    if (unwinder && ebbi_option(EBB_OPTION_PROFILE_FAST_UNWIND) && ebbi_os_code_frame_info((uintptr_t)ebbi_unwind_load) != NULL)
        rule_cache = ebbi_os_map(RULE_SLOTS * sizeof *rule_cache, NULL);
#endif
    return unwinder;
}

unsigned ebbi_unwind_stack(uintptr_t *frames, unsigned max, unsigned how)
{
    if (!unwinder)
        return 0;
    int saved = errno;
    walk_t w = {frames, 0, max, (how & EBBI_UNWIND_KEEP_SELF) != 0};
    bool done = false;
#ifdef FAST_WALK
    if (rule_cache != NULL && !(how & EBBI_UNWIND_LIBGCC)) {
        rules_check_unloads();
        done = fast_walk(&w);
        if (!done)
            w.n = 0;
    }
#endif
    if (!done && !(how & EBBI_UNWIND_FAST))
        libgcc_walk(&w);
    errno = saved;
    return done || !(how & EBBI_UNWIND_FAST) ? w.n : UINT32_MAX;
}

unsigned ebbi_unwind_backtrace(uintptr_t *frames, unsigned max)
{
    return ebbi_unwind_stack(frames, max, 0);
}

void ebbi_unwind_fork_prepare(void)
{
    pthread_mutex_lock(&walk_lock);
}

void ebbi_unwind_fork_parent(void)
{
    pthread_mutex_unlock(&walk_lock);
}

void ebbi_unwind_fork_child(void)
{
    pthread_mutex_init(&walk_lock, NULL);
}

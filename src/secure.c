/* Secure mode's checks on small blocks (EBB_SECURE=1): a canary after
 * every block, checked on free; freed blocks zeroed (zero-on-free too) and
 * found still zero when handed out again; free-list links checked.  The
 * layout that goes with the mode (guard pages, shuffled carving) is set by
 * safety.c and done by the layers below. */
#include <string.h>

#include "internal.h"

/* Its top byte zero, as are a user address's and a block size's: the
 * canary word's last byte is zero, and stops a string that runs off the
 * block. */
static uintptr_t canary_secret;

void ebbi_secure_init(void)
{
    canary_secret = (ebbi_os_random_word() * 0x9e3779b97f4a7c15u) >> 8;
}

static EBBI_COLD void report_sized(const char *what, size_t size, const char *tail, const void *addr)
{
    char buf[160];
    ebbi_format(buf, sizeof buf, "%s a %zu-byte block%s", what, size, tail);
    ebbi_fatal(buf, addr);
}

/* The block's last word holds its requested size, encoded; the bytes
 * between the request and that word hold a pattern.  Both are written and
 * read a word at a time, unaligned: a word that runs past the pattern
 * lands in the size word, written after it, or is masked. */
#define SLACK_BYTE 0xab
#define SLACK_WORD (SLACK_BYTE * UINT64_C(0x0101010101010101))

static inline uint64_t load_word(const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static inline void store_word(uint8_t *p, uint64_t w)
{
    memcpy(p, &w, sizeof w);
}

/* The size word: the size in its low 40 bits, 16 bits that check it
 * above them, its top byte zero; XORed with the secret and the block's
 * address.  A write over part of it changes the size or its check, which
 * then disagree: the canary is reported broken, never trusted for a size
 * the write made up. */
#define CANARY_SIZE_BITS 40

static inline uint64_t canary_size_check(uint64_t size)
{
    return ((size ^ canary_secret) * UINT64_C(0x9e3779b97f4a7c15)) >> 48;
}

static inline void canary_set(const page_t *page, block_t *block, size_t size)
{
    uint8_t *b = (uint8_t *)block;
    size_t tail = page->block_size - SECURE_TAIL;
    for (size_t i = size; i < tail; i += 8)
        store_word(b + i, SLACK_WORD);
    uint64_t word = size | canary_size_check(size) << CANARY_SIZE_BITS;
    store_word(b + tail, canary_secret ^ (uintptr_t)block ^ word);
}

size_t ebbi_canary_check(const page_t *page, const block_t *block)
{
    const uint8_t *b = (const uint8_t *)block;
    size_t tail = page->block_size - SECURE_TAIL;
    uint64_t word = load_word(b + tail) ^ canary_secret ^ (uintptr_t)block;
    size_t size = word & ((UINT64_C(1) << CANARY_SIZE_BITS) - 1);
    if (size > tail || word >> CANARY_SIZE_BITS != canary_size_check(size))
        report_sized("heap overflow past", tail, " (its canary is broken)", block);
    size_t i = size;
    for (; i + 8 <= tail; i += 8)
        if (load_word(b + i) != SLACK_WORD)
            report_sized("heap overflow past", size, "", block);
    if (i < tail) { /* the last 1..7 bytes, the size word's beyond them masked off */
        uint64_t mask = (UINT64_C(1) << (8 * (tail - i))) - 1;
        if (((load_word(b + i) ^ SLACK_WORD) & mask) != 0)
            report_sized("heap overflow past", size, "", block);
    }
    return size;
}

/* Secure mode zeroes a freed block past its link and key words, so that
 * reading it after the free shows nothing, and a write after the free,
 * anywhere in it, is seen when the block is handed out again
 * (check_fresh).  Zero-on-free does the same, unchecked. */
void ebbi_safety_on_free(page_t *page, block_t *block)
{
    if (ebbi_safety & SAFETY_SECURE)
        ebbi_canary_check(page, block);
    /* memset, even for small blocks (word stores measured slower); a big
     * block's kernel pages the program never touched stay out of memory
     * (memset brought a 2 MiB block of which 4 KiB was used all in). */
    ebbi_clear((uint8_t *)block + sizeof(block_t), page->block_size - sizeof(block_t));
}

/* Secure mode: a block about to be handed out is as its free left it:
 * zero past its link, its key word the page's or zero (carved fresh).
 * Big blocks are read at memory speed whatever the code (tried: 16-byte
 * vectors in four lanes gained nothing); two lanes keep it short. */
static inline void check_fresh(const page_t *page, const block_t *block)
{
    const uint64_t *w = (const uint64_t *)(const void *)block;
    size_t words = page->block_size / sizeof *w;
    uint64_t seen = w[1] == ebbi_free_key(page) ? 0 : w[1];
    uint64_t other = 0;
    for (size_t i = 2; i < words; i += 2) { /* block sizes are multiples of 16 */
        seen |= w[i];
        other |= w[i + 1];
    }
    if ((seen | other) != 0)
        report_sized("write after free of", page->block_size - SECURE_TAIL, "", block);
}

/* Secure mode: hand out `block`, the head of the page's free list: its
 * link decoded and checked, the block found as its free left it, then
 * its link and key cleared (the program never sees a link), its canary
 * set.  It reads as zero up to the canary: calloc needs no memset. */
void *ebbi_secure_take(page_t *page, block_t *block, size_t size)
{
    block_t *next = ebbi_block_next(block);
    if (next != NULL && !ebbi_page_holds_block(page, (uintptr_t)next))
        ebbi_safety_link_corrupted(block);
    /* A list carved fresh from memory the kernel zeroed (free_is_zero,
     * unless zero-on-free keeps it set over freed blocks too) was never
     * handed out: no write after free to find.  Reading such a block's
     * untouched kernel pages would map the zero page, and the canary's
     * write then fault again and flush every CPU's TLB. */
    if (!page->free_is_zero || ebbi_layout.free_keeps_zero)
        check_fresh(page, block);
    block->next = next; /* plain, for ebbi_page_take */
    ebbi_page_take(page, block, size, false);
    block->next = NULL;
    canary_set(page, block, size);
    return block;
}

void ebbi_safety_link_corrupted(const void *where)
{
    ebbi_fatal("corrupted free list", where);
}

/* ---- zero-byte blocks -------------------------------------------------------- */

/* Secure mode: malloc(0) returns a distinct address in a region that is
 * PROT_NONE throughout, so that no byte of the block can be read or
 * written (any access faults, and fault.c names it).  Slots of 16 bytes
 * (malloc's alignment) are taken next-fit, so a freed one serves again
 * only after all the others; a bitmap, in metadata, tells live slots from
 * free ones (a double free, a free of an address between slots).  A
 * region costs address space and its bitmap, no resident page; when
 * ZERO_REGIONS are full, malloc(0) takes a block with a canary at 0
 * bytes, as zero-size requests with a large alignment do. */
#define ZERO_REGION_SIZE ((size_t)1 << 20)
#define ZERO_SLOT 16
#define ZERO_SLOTS (ZERO_REGION_SIZE / ZERO_SLOT)
#define ZERO_REGIONS 64

static struct {
    pthread_mutex_t lock;
    _Atomic(uintptr_t) base[ZERO_REGIONS]; /* published once, read without the lock */
    _Atomic(uint64_t) *live[ZERO_REGIONS]; /* a bit per slot, changed under the lock */
    unsigned count;
    size_t cursor; /* the next slot looked at, over all regions */
} zero = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool zero_grow(void)
{
    if (zero.count == ZERO_REGIONS)
        return false;
    void *base = ebbi_os_map(ZERO_REGION_SIZE, NULL);
    if (base == NULL)
        return false;
    _Atomic(uint64_t) *live = ebbi_meta_alloc(ZERO_SLOTS / 8); /* zero: no slot live */
    if (live == NULL || !ebbi_os_protect(base, ZERO_REGION_SIZE, EBBI_ACCESS_NONE)) {
        ebbi_os_unmap(base, ZERO_REGION_SIZE);
        return false;
    }
    zero.live[zero.count] = live;
    ebbi_store_release(&zero.base[zero.count], (uintptr_t)base);
    zero.cursor = (size_t)zero.count * ZERO_SLOTS;
    zero.count++;
    return true;
}

/* A free slot from the cursor on (wrapping once), taken; or SIZE_MAX. */
static size_t zero_take(void)
{
    size_t total = (size_t)zero.count * ZERO_SLOTS;
    for (size_t seen = 0; seen < total + 64; ) {
        size_t slot = zero.cursor % total;
        _Atomic(uint64_t) *word = &zero.live[slot / ZERO_SLOTS][(slot % ZERO_SLOTS) / 64];
        uint64_t bits = ebbi_load_relaxed(word);
        uint64_t free_bits = ~bits & (~UINT64_C(0) << (slot % 64));
        size_t word_start = slot - slot % 64;
        if (free_bits != 0) {
            unsigned bit = (unsigned)__builtin_ctzll(free_bits);
            ebbi_store_relaxed(word, bits | UINT64_C(1) << bit);
            zero.cursor = word_start + bit + 1;
            return word_start + bit;
        }
        seen += word_start + 64 - slot;
        zero.cursor = word_start + 64;
    }
    return SIZE_MAX;
}

void *ebbi_zero_alloc(void)
{
    pthread_mutex_lock(&zero.lock);
    size_t slot = zero.count != 0 ? zero_take() : SIZE_MAX;
    if (slot == SIZE_MAX && zero_grow())
        slot = zero_take();
    pthread_mutex_unlock(&zero.lock);
    if (slot == SIZE_MAX)
        return NULL;
    return (void *)(ebbi_load_relaxed(&zero.base[slot / ZERO_SLOTS]) + (slot % ZERO_SLOTS) * ZERO_SLOT);
}

/* The region index holding p, or -1. */
static int zero_region(uintptr_t p)
{
    for (int i = 0; i < ZERO_REGIONS; i++) {
        uintptr_t base = ebbi_load_acquire(&zero.base[i]);
        if (base == 0)
            return -1;
        if (p - base < ZERO_REGION_SIZE)
            return i;
    }
    return -1;
}

bool ebbi_zero_holds(uintptr_t p)
{
    return zero_region(p) >= 0;
}

/* p is in a zero region (ebbi_zero_holds): a live zero-byte block?  Read
 * without the lock: a misuse path's answer, or the fault handler's. */
bool ebbi_zero_live(uintptr_t p)
{
    int r = zero_region(p);
    uintptr_t off = p - ebbi_load_relaxed(&zero.base[r]);
    if (off % ZERO_SLOT != 0)
        return false;
    size_t slot = off / ZERO_SLOT;
    return (ebbi_load_relaxed(&zero.live[r][slot / 64]) >> (slot % 64)) & 1;
}

void ebbi_zero_free(void *p)
{
    uintptr_t a = (uintptr_t)p;
    int r = zero_region(a);
    uintptr_t off = a - ebbi_load_relaxed(&zero.base[r]);
    if (off % ZERO_SLOT != 0) {
        ebbi_misuse("free of invalid pointer", p);
        return;
    }
    size_t slot = off / ZERO_SLOT;
    uint64_t bit = UINT64_C(1) << (slot % 64);
    pthread_mutex_lock(&zero.lock);
    _Atomic(uint64_t) *word = &zero.live[r][slot / 64];
    uint64_t bits = ebbi_load_relaxed(word);
    ebbi_store_relaxed(word, bits & ~bit);
    bool was_live = (bits & bit) != 0;
    pthread_mutex_unlock(&zero.lock);
    if (!was_live)
        ebbi_misuse("double free", p);
}

void ebbi_zero_fork_prepare(void)
{
    pthread_mutex_lock(&zero.lock);
}

void ebbi_zero_fork_parent(void)
{
    pthread_mutex_unlock(&zero.lock);
}

void ebbi_zero_fork_child(void)
{
    pthread_mutex_init(&zero.lock, NULL);
}

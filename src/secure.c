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
 * between the request and that word hold a pattern. */
#define SLACK_BYTE 0xab

void ebbi_canary_set(page_t *page, block_t *block, size_t size)
{
    uint8_t *b = (uint8_t *)block;
    size_t tail = page->block_size - SECURE_TAIL;
    memset(b + size, SLACK_BYTE, tail - size);
    uintptr_t word = canary_secret ^ (uintptr_t)block ^ size;
    memcpy(b + tail, &word, sizeof word);
}

size_t ebbi_canary_check(const page_t *page, const block_t *block)
{
    const uint8_t *b = (const uint8_t *)block;
    size_t tail = page->block_size - SECURE_TAIL;
    uintptr_t word;
    memcpy(&word, b + tail, sizeof word);
    size_t size = word ^ canary_secret ^ (uintptr_t)block;
    if (size > tail)
        report_sized("heap overflow past", tail, " (its canary is broken)", block);
    /* Byte by byte to a word boundary, then a word at a time (tail is a
     * multiple of 8: block sizes are multiples of 16). */
    size_t i = size;
    for (; i < tail && (i & 7) != 0; i++)
        if (b[i] != SLACK_BYTE)
            report_sized("heap overflow past", size, "", block);
    for (; i < tail; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, sizeof w);
        if (w != SLACK_BYTE * UINT64_C(0x0101010101010101))
            report_sized("heap overflow past", size, "", block);
    }
    return size;
}

/* Secure mode zeroes a freed block past its link and key words, so that
 * reading it after the free shows nothing, and a write after the free,
 * anywhere in it, is seen when the block is handed out again
 * (ebbi_secure_check_fresh).  Zero-on-free does the same, unchecked. */
void ebbi_safety_on_free(page_t *page, block_t *block)
{
    if (ebbi_safety & SAFETY_SECURE)
        ebbi_canary_check(page, block);
    memset((uint8_t *)block + sizeof(block_t), 0, page->block_size - sizeof(block_t));
}

/* Secure mode: a block about to be handed out is as its free left it:
 * zero past its link, its key word the page's or zero (carved fresh). */
void ebbi_secure_check_fresh(const page_t *page, const block_t *block)
{
    const uint64_t *w = (const uint64_t *)(const void *)block;
    size_t words = page->block_size / sizeof *w;
    uint64_t seen = w[1] == ebbi_free_key(page) ? 0 : w[1];
    for (size_t i = 2; i < words; i++)
        seen |= w[i];
    if (seen != 0)
        report_sized("write after free of", page->block_size - SECURE_TAIL, "", block);
}

void ebbi_safety_link_corrupted(const void *where)
{
    ebbi_fatal("corrupted free list", where);
}

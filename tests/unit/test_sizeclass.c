/* test: sizeclass        fast
 * test: test_sizeclass   valgrind */
/* Unit test of the size-class table (src/sizeclass.c) against its rules. */
#include "check.h"
#include "internal.h"

int main(void)
{
    int bad_order = 0, bad_align = 0, bad_tail = 0;
    for (unsigned c = 0; c < EBB_CLASS_COUNT; c++) {
        uint32_t size = ebbi_classes[c].block_size;
        if (c > 0 && size <= ebbi_classes[c - 1].block_size)
            bad_order++;
        if (size % EBB_ALIGNMENT != 0)
            bad_align++;
        size_t page = (size_t)ebbi_classes[c].page_slices << EBB_SLICE_SHIFT;
        size_t tail = page % size;
        if (page < size || tail * 16 > page || ebbi_classes[c].page_slices >= EBB_SEGMENT_DATA_SLICES)
            bad_tail++;
    }
    CHECK(bad_order == 0, "classes strictly increase");
    CHECK(bad_align == 0, "classes are multiples of 16");
    CHECK(bad_tail == 0, "pages fit and waste at most 1/16 at their tail");
    CHECK(ebbi_classes[0].block_size == EBB_MIN_BLOCK);
    CHECK(ebbi_classes[EBB_CLASS_COUNT - 1].block_size == EBB_PAGE_BLOCK_MAX);
    /* Parked pages (heap.c) must never be reachable through the direct table. */
    CHECK(ebbi_classes[EBB_PARK_FIRST_CLASS - 1].block_size <= EBB_DIRECT_MAX &&
              ebbi_classes[EBB_PARK_FIRST_CLASS].block_size > EBB_DIRECT_MAX,
          "EBB_PARK_FIRST_CLASS is the first class above EBB_DIRECT_MAX");

    /* Every size rounds up to the smallest class that holds it, never down,
     * wasting less than 1/9 of the class above 128 bytes. */
    int rounds_down = 0, not_smallest = 0, too_wasteful = 0;
    double worst = 0;
    for (size_t n = 0; n <= EBB_PAGE_BLOCK_MAX; n++) {
        unsigned c = ebbi_size_class(n);
        uint32_t size = ebbi_classes[c].block_size;
        if (size < n)
            rounds_down++;
        if (c > 0 && ebbi_classes[c - 1].block_size >= n)
            not_smallest++;
        if (n > 128) {
            double waste = (double)(size - n) / size;
            if (waste > worst)
                worst = waste;
            if (waste >= 1.0 / 9)
                too_wasteful++;
        }
    }
    CHECK(rounds_down == 0, "%d sizes round down", rounds_down);
    CHECK(not_smallest == 0, "%d sizes skip a class", not_smallest);
    CHECK(too_wasteful == 0, "%d sizes waste 1/9 or more (worst %.3f)", too_wasteful, worst);
    printf("worst rounding waste above 128 bytes: %.2f%%\n", worst * 100);

    /* The aligned-allocation rule: for a power of two a <= 64 KiB, the class
     * of any multiple of a is a multiple of a. */
    int misaligned = 0;
    for (size_t a = 32; a <= EBB_PAGE_ALIGN_MAX; a *= 2)
        for (size_t n = a; n <= EBB_PAGE_BLOCK_MAX; n += a)
            if (ebbi_classes[ebbi_size_class(n)].block_size % a != 0)
                misaligned++;
    CHECK(misaligned == 0, "%d aligned requests land in a class that is not a multiple", misaligned);
    return check_summary();
}

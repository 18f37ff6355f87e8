/* Size classes.
 *
 * 16-byte steps up to 128 bytes, then eight classes per doubling up to
 * 2 MiB (EBB_PAGE_BLOCK_MAX).  A request of n > 128 bytes is rounded up by
 * less than 1/9 of its class (worst case n = 2^k + 1); below 128 the
 * rounding is at most 15 bytes, which the 16-byte alignment imposes anyway.
 * Every class is a multiple of 16, and every class at or above a power of
 * two p (p <= 64 KiB) that is a multiple of p-aligned steps is a multiple
 * of p: the aligned-allocation path depends on this (alloc.c).
 *
 * The page size of each class (in 64 KiB slices) is the smallest that
 * leaves at most 1/16 of the page as tail waste.  tests/unit/test_sizeclass.c
 * checks the table against these rules; tools/sizeclass_waste.py prints
 * the worst cases quoted in docs/ARCHITECTURE.md.
 *
 * Columns: block size, slices per page.
 */
#include "internal.h"

const ebbi_class_info_t ebbi_classes[] = {
    /* spacing 16 bytes */
    {16, 1}, /*   0: 4096 blocks per page */
    {32, 1}, /*   1: 2048 blocks per page */
    {48, 1}, /*   2: 1365 blocks per page */
    {64, 1}, /*   3: 1024 blocks per page */
    {80, 1}, /*   4: 819 blocks per page */
    {96, 1}, /*   5: 682 blocks per page */
    {112, 1}, /*   6: 585 blocks per page */
    {128, 1}, /*   7: 512 blocks per page */
    {144, 1}, /*   8: 455 blocks per page */
    {160, 1}, /*   9: 409 blocks per page */
    {176, 1}, /*  10: 372 blocks per page */
    {192, 1}, /*  11: 341 blocks per page */
    {208, 1}, /*  12: 315 blocks per page */
    {224, 1}, /*  13: 292 blocks per page */
    {240, 1}, /*  14: 273 blocks per page */
    {256, 1}, /*  15: 256 blocks per page */
    /* spacing 32 bytes */
    {288, 1}, /*  16: 227 blocks per page */
    {320, 1}, /*  17: 204 blocks per page */
    {352, 1}, /*  18: 186 blocks per page */
    {384, 1}, /*  19: 170 blocks per page */
    {416, 1}, /*  20: 157 blocks per page */
    {448, 1}, /*  21: 146 blocks per page */
    {480, 1}, /*  22: 136 blocks per page */
    {512, 1}, /*  23: 128 blocks per page */
    /* spacing 64 bytes */
    {576, 1}, /*  24: 113 blocks per page */
    {640, 1}, /*  25: 102 blocks per page */
    {704, 1}, /*  26: 93 blocks per page */
    {768, 1}, /*  27: 85 blocks per page */
    {832, 1}, /*  28: 78 blocks per page */
    {896, 1}, /*  29: 73 blocks per page */
    {960, 1}, /*  30: 68 blocks per page */
    {1024, 1}, /*  31: 64 blocks per page */
    /* spacing 128 bytes */
    {1152, 1}, /*  32: 56 blocks per page */
    {1280, 1}, /*  33: 51 blocks per page */
    {1408, 1}, /*  34: 46 blocks per page */
    {1536, 1}, /*  35: 42 blocks per page */
    {1664, 1}, /*  36: 39 blocks per page */
    {1792, 1}, /*  37: 36 blocks per page */
    {1920, 1}, /*  38: 34 blocks per page */
    {2048, 1}, /*  39: 32 blocks per page */
    /* spacing 256 bytes */
    {2304, 1}, /*  40: 28 blocks per page */
    {2560, 1}, /*  41: 25 blocks per page */
    {2816, 1}, /*  42: 23 blocks per page */
    {3072, 1}, /*  43: 21 blocks per page */
    {3328, 1}, /*  44: 19 blocks per page */
    {3584, 1}, /*  45: 18 blocks per page */
    {3840, 1}, /*  46: 17 blocks per page */
    {4096, 1}, /*  47: 16 blocks per page */
    /* spacing 512 bytes */
    {4608, 1}, /*  48: 14 blocks per page */
    {5120, 1}, /*  49: 12 blocks per page */
    {5632, 1}, /*  50: 11 blocks per page */
    {6144, 1}, /*  51: 10 blocks per page */
    {6656, 2}, /*  52: 19 blocks per page */
    {7168, 1}, /*  53: 9 blocks per page */
    {7680, 1}, /*  54: 8 blocks per page */
    {8192, 1}, /*  55: 8 blocks per page */
    /* spacing 1024 bytes */
    {9216, 1}, /*  56: 7 blocks per page */
    {10240, 1}, /*  57: 6 blocks per page */
    {11264, 2}, /*  58: 11 blocks per page */
    {12288, 1}, /*  59: 5 blocks per page */
    {13312, 3}, /*  60: 14 blocks per page */
    {14336, 2}, /*  61: 9 blocks per page */
    {15360, 1}, /*  62: 4 blocks per page */
    {16384, 1}, /*  63: 4 blocks per page */
    /* spacing 2048 bytes */
    {18432, 2}, /*  64: 7 blocks per page */
    {20480, 1}, /*  65: 3 blocks per page */
    {22528, 4}, /*  66: 11 blocks per page */
    {24576, 2}, /*  67: 5 blocks per page */
    {26624, 3}, /*  68: 7 blocks per page */
    {28672, 4}, /*  69: 9 blocks per page */
    {30720, 1}, /*  70: 2 blocks per page */
    {32768, 1}, /*  71: 2 blocks per page */
    /* spacing 4096 bytes */
    {36864, 3}, /*  72: 5 blocks per page */
    {40960, 2}, /*  73: 3 blocks per page */
    {45056, 5}, /*  74: 7 blocks per page */
    {49152, 3}, /*  75: 4 blocks per page */
    {53248, 5}, /*  76: 6 blocks per page */
    {57344, 7}, /*  77: 8 blocks per page */
    {61440, 1}, /*  78: 1 blocks per page */
    {65536, 1}, /*  79: 1 blocks per page */
    /* spacing 8192 bytes */
    {73728, 6}, /*  80: 5 blocks per page */
    {81920, 4}, /*  81: 3 blocks per page */
    {90112, 7}, /*  82: 5 blocks per page */
    {98304, 3}, /*  83: 2 blocks per page */
    {106496, 5}, /*  84: 3 blocks per page */
    {114688, 7}, /*  85: 4 blocks per page */
    {122880, 2}, /*  86: 1 blocks per page */
    {131072, 2}, /*  87: 1 blocks per page */
    /* spacing 16384 bytes */
    {147456, 7}, /*  88: 3 blocks per page */
    {163840, 5}, /*  89: 2 blocks per page */
    {180224, 11}, /*  90: 4 blocks per page */
    {196608, 3}, /*  91: 1 blocks per page */
    {212992, 10}, /*  92: 3 blocks per page */
    {229376, 7}, /*  93: 2 blocks per page */
    {245760, 4}, /*  94: 1 blocks per page */
    {262144, 4}, /*  95: 1 blocks per page */
    /* spacing 32768 bytes */
    {294912, 9}, /*  96: 2 blocks per page */
    {327680, 5}, /*  97: 1 blocks per page */
    {360448, 11}, /*  98: 2 blocks per page */
    {393216, 6}, /*  99: 1 blocks per page */
    {425984, 13}, /* 100: 2 blocks per page */
    {458752, 7}, /* 101: 1 blocks per page */
    {491520, 8}, /* 102: 1 blocks per page */
    {524288, 8}, /* 103: 1 blocks per page */
    /* spacing 65536 bytes */
    {589824, 9}, /* 104: 1 blocks per page */
    {655360, 10}, /* 105: 1 blocks per page */
    {720896, 11}, /* 106: 1 blocks per page */
    {786432, 12}, /* 107: 1 blocks per page */
    {851968, 13}, /* 108: 1 blocks per page */
    {917504, 14}, /* 109: 1 blocks per page */
    {983040, 15}, /* 110: 1 blocks per page */
    {1048576, 16}, /* 111: 1 blocks per page */
    /* spacing 131072 bytes */
    {1179648, 18}, /* 112: 1 blocks per page */
    {1310720, 20}, /* 113: 1 blocks per page */
    {1441792, 22}, /* 114: 1 blocks per page */
    {1572864, 24}, /* 115: 1 blocks per page */
    {1703936, 26}, /* 116: 1 blocks per page */
    {1835008, 28}, /* 117: 1 blocks per page */
    {1966080, 30}, /* 118: 1 blocks per page */
    {2097152, 32}, /* 119: 1 blocks per page */
};

_Static_assert(sizeof(ebbi_classes) / sizeof(ebbi_classes[0]) == EBB_CLASS_COUNT,
               "class table size");

/*
 * bignum.c — symbolic computation: polynomials with big-integer coefficients,
 * the way a computer-algebra system keeps them.
 *
 *   usage: bignum [STEPS [SEED]]
 *
 * A big integer is an array of 64-bit limbs allocated at its exact size, as
 * GMP does: when a sum needs one limb more, the array is realloc'ed one limb
 * bigger; when a product comes out shorter than its operands allowed, it is
 * realloc'ed smaller.  Results are reduced modulo 2^(64*MAX_LIMBS), so sizes
 * stay between 1 and MAX_LIMBS limbs (8..256 bytes).  A polynomial is an
 * array of coefficients (itself malloc'ed, and realloc'ed when the degree
 * grows).
 *
 * A pool of POLYS polynomials is kept; each step replaces one of them by the
 * result of an operation on random others:
 *   40%  product  a*b: every coefficient product is a temporary big integer
 *        (malloc, multiply, add into the result, free), and every sum into a
 *        result coefficient may grow it by realloc;
 *   20%  sum      a+b;
 *   15%  x*a + k, in place: the coefficient array grows by one (realloc) and
 *        every coefficient is multiplied by a small constant (may grow);
 *   10%  simplify a, in place: every coefficient loses a random number of
 *        its top limbs (realloc to the smaller size), as after dividing out
 *        a common factor;
 *   15%  a fresh random polynomial with small coefficients (the old one and
 *        everything in it is freed).
 * Products and sums are truncated to MAX_TERMS terms.
 *
 * After each step the result's coefficients are read back (length, lowest
 * and highest limb) into an order-dependent checksum; at the end all limbs of
 * all polynomials are.  The checksum depends only on STEPS and SEED.
 *
 * Output: bignum steps=N seed=S ops=N checksum=0x...
 */
#include "bench.h"

#define POLYS 256u
#define MAX_TERMS 24u
#define MAX_LIMBS 16u
#define DEFAULT_STEPS 20000ull
#define DEFAULT_SEED 42ull

typedef struct {
    uint64_t *d;   /* NULL when zero */
    uint32_t n;    /* limbs in use; the top one is non-zero */
    uint32_t cap;  /* limbs allocated */
} num_t;

typedef struct {
    num_t *c;      /* coefficients of x^0 .. x^(terms-1) */
    uint32_t terms;
} poly_t;

static uint64_t ops;        /* allocator calls */
static uint64_t checksum = 0xcbf29ce484222325ull;
static uint64_t rs;         /* PRNG state */

static void *bn_malloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        die("bignum: malloc(%zu) failed", n);
    ops++;
    return p;
}

static void *bn_calloc(size_t k, size_t n)
{
    void *p = calloc(k, n);
    if (p == NULL)
        die("bignum: calloc(%zu, %zu) failed", k, n);
    ops++;
    return p;
}

static void *bn_realloc(void *q, size_t n)
{
    void *p = realloc(q, n);
    if (p == NULL)
        die("bignum: realloc(%zu) failed", n);
    ops++;
    return p;
}

static void bn_free(void *p)
{
    if (p != NULL) {
        free(p);
        ops++;
    }
}

static void num_free(num_t *a)
{
    bn_free(a->d);
    a->d = NULL;
    a->n = a->cap = 0;
}

static void num_set(num_t *a, uint64_t v)
{
    num_free(a);
    if (v != 0) {
        a->d = bn_malloc(sizeof *a->d);
        a->d[0] = v;
        a->n = a->cap = 1;
    }
}

/* Make room for n limbs (exact size, like mpz_realloc). */
static void num_reserve(num_t *a, uint32_t n)
{
    if (n > a->cap) {
        a->d = bn_realloc(a->d, n * sizeof *a->d);
        a->cap = n;
    }
}

static void num_normalise(num_t *a)
{
    if (a->n > MAX_LIMBS)
        a->n = MAX_LIMBS; /* reduce modulo 2^(64*MAX_LIMBS) */
    while (a->n > 0 && a->d[a->n - 1] == 0)
        a->n--;
}

/* A fresh temporary holding a*b, allocated at its exact size. */
static num_t num_mul(const num_t *a, const num_t *b)
{
    num_t r = {NULL, 0, 0};
    if (a->n == 0 || b->n == 0)
        return r;
    uint32_t n = a->n + b->n;
    if (n > MAX_LIMBS + 1)
        n = MAX_LIMBS + 1; /* low limbs only: the rest is reduced away */
    r.d = bn_malloc(n * sizeof *r.d);
    r.cap = n;
    memset(r.d, 0, n * sizeof *r.d);
    for (uint32_t i = 0; i < a->n && i < n; i++) {
        unsigned __int128 carry = 0;
        uint32_t j;
        for (j = 0; j < b->n && i + j < n; j++) {
            unsigned __int128 t = (unsigned __int128)a->d[i] * b->d[j] + r.d[i + j] + carry;
            r.d[i + j] = (uint64_t)t;
            carry = t >> 64;
        }
        if (i + j < n)
            r.d[i + j] = (uint64_t)carry;
    }
    r.n = n;
    num_normalise(&r);
    if (r.n == 0) {
        num_free(&r);
    } else if (r.n < r.cap) {
        r.d = bn_realloc(r.d, r.n * sizeof *r.d); /* give back the unused top */
        r.cap = r.n;
    }
    return r;
}

/* a += b, growing a by realloc when the sum needs more limbs. */
static void num_add(num_t *a, const num_t *b)
{
    if (b->n == 0)
        return;
    uint32_t n = (a->n > b->n ? a->n : b->n);
    num_reserve(a, n);
    for (uint32_t i = a->n; i < n; i++)
        a->d[i] = 0;
    uint64_t carry = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t x = a->d[i], y = i < b->n ? b->d[i] : 0;
        uint64_t s = x + y;
        uint64_t c1 = s < x;
        s += carry;
        carry = c1 | (s < carry);
        a->d[i] = s;
    }
    a->n = n;
    if (carry != 0 && n < MAX_LIMBS) {
        num_reserve(a, n + 1);
        a->d[n] = carry;
        a->n = n + 1;
    }
    num_normalise(a);
}

/* a *= k for a small k, growing a by one limb when needed. */
static void num_scale(num_t *a, uint64_t k)
{
    uint64_t carry = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        unsigned __int128 t = (unsigned __int128)a->d[i] * k + carry;
        a->d[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
    if (carry != 0 && a->n < MAX_LIMBS) {
        num_reserve(a, a->n + 1);
        a->d[a->n++] = carry;
    }
    num_normalise(a);
}

static num_t num_copy(const num_t *a)
{
    num_t r = {NULL, 0, 0};
    if (a->n != 0) {
        r.d = bn_malloc(a->n * sizeof *r.d);
        memcpy(r.d, a->d, a->n * sizeof *r.d);
        r.n = r.cap = a->n;
    }
    return r;
}

static void poly_free(poly_t *p)
{
    for (uint32_t i = 0; i < p->terms; i++)
        num_free(&p->c[i]);
    bn_free(p->c);
    p->c = NULL;
    p->terms = 0;
}

static poly_t poly_random(void)
{
    poly_t p;
    p.terms = 2u + (uint32_t)rng_below(&rs, 7);
    p.c = bn_calloc(p.terms, sizeof *p.c);
    for (uint32_t i = 0; i < p.terms; i++)
        num_set(&p.c[i], rng_next(&rs) >> (rng_next(&rs) & 63));
    return p;
}

static poly_t poly_mul(const poly_t *a, const poly_t *b)
{
    poly_t r;
    r.terms = a->terms + b->terms - 1;
    if (r.terms > MAX_TERMS)
        r.terms = MAX_TERMS;
    r.c = bn_calloc(r.terms, sizeof *r.c);
    for (uint32_t i = 0; i < a->terms; i++)
        for (uint32_t j = 0; j < b->terms && i + j < r.terms; j++) {
            num_t t = num_mul(&a->c[i], &b->c[j]);
            num_add(&r.c[i + j], &t);
            num_free(&t);
        }
    return r;
}

static poly_t poly_add(const poly_t *a, const poly_t *b)
{
    const poly_t *big = a->terms >= b->terms ? a : b;
    const poly_t *small = big == a ? b : a;
    poly_t r;
    r.terms = big->terms;
    r.c = bn_malloc(r.terms * sizeof *r.c);
    for (uint32_t i = 0; i < r.terms; i++) {
        r.c[i] = num_copy(&big->c[i]);
        if (i < small->terms)
            num_add(&r.c[i], &small->c[i]);
    }
    return r;
}

/* p = x*p + k, in place, scaling every coefficient by m. */
static void poly_shift_scale(poly_t *p, uint64_t k, uint64_t m)
{
    if (p->terms < MAX_TERMS) {
        p->c = bn_realloc(p->c, (p->terms + 1) * sizeof *p->c);
        memmove(&p->c[1], &p->c[0], p->terms * sizeof *p->c);
        p->terms++;
    } else {
        num_free(&p->c[p->terms - 1]); /* x^MAX_TERMS falls off */
        memmove(&p->c[1], &p->c[0], (p->terms - 1) * sizeof *p->c);
    }
    p->c[0].d = NULL;
    p->c[0].n = p->c[0].cap = 0;
    num_set(&p->c[0], k);
    for (uint32_t i = 1; i < p->terms; i++)
        num_scale(&p->c[i], m);
}

/* Drop the top limbs of every coefficient, shrinking it by realloc. */
static void poly_simplify(poly_t *p)
{
    for (uint32_t i = 0; i < p->terms; i++) {
        num_t *a = &p->c[i];
        if (a->n < 2)
            continue;
        a->n -= 1 + (uint32_t)(rng_next(&rs) % (a->n - 1));
        num_normalise(a);
        if (a->n == 0) {
            num_free(a);
        } else {
            a->d = bn_realloc(a->d, a->n * sizeof *a->d);
            a->cap = a->n;
        }
    }
}

static void fold(const poly_t *p)
{
    checksum = mix(checksum, p->terms);
    for (uint32_t i = 0; i < p->terms; i++) {
        const num_t *a = &p->c[i];
        checksum = mix(checksum, a->n);
        if (a->n != 0)
            checksum = mix(checksum, a->d[0] ^ (a->d[a->n - 1] << 1));
    }
}

int main(int argc, char **argv)
{
    uint64_t steps = arg_u64(argc, argv, 1, DEFAULT_STEPS);
    uint64_t seed = arg_u64(argc, argv, 2, DEFAULT_SEED);
    rs = rng_seed(seed, 0);

    poly_t *pool = bn_calloc(POLYS, sizeof *pool);
    for (uint32_t i = 0; i < POLYS; i++)
        pool[i] = poly_random();

    uint64_t limbs_seen = 0;
    for (uint64_t s = 0; s < steps; s++) {
        uint64_t r = rng_next(&rs);
        uint32_t op = (uint32_t)(r % 20u);
        uint32_t ia = (uint32_t)(r >> 8) % POLYS;
        uint32_t ib = (uint32_t)(r >> 24) % POLYS;
        uint32_t ic = (uint32_t)(r >> 40) % POLYS;
        poly_t res;
        if (op < 8) {
            res = poly_mul(&pool[ia], &pool[ib]);
        } else if (op < 12) {
            res = poly_add(&pool[ia], &pool[ib]);
        } else if (op < 15) {
            poly_shift_scale(&pool[ia], rng_next(&rs) | 1, (rng_next(&rs) >> 40) | 3);
            fold(&pool[ia]);
            continue;
        } else if (op < 17) {
            poly_simplify(&pool[ia]);
            fold(&pool[ia]);
            continue;
        } else {
            res = poly_random();
        }
        poly_free(&pool[ic]);
        pool[ic] = res;
        fold(&pool[ic]);
        for (uint32_t i = 0; i < res.terms; i++)
            limbs_seen += res.c[i].n;
    }

    for (uint32_t i = 0; i < POLYS; i++) {
        for (uint32_t t = 0; t < pool[i].terms; t++)
            for (uint32_t l = 0; l < pool[i].c[t].n; l++)
                checksum = mix(checksum, pool[i].c[t].d[l]);
        poly_free(&pool[i]);
    }
    bn_free(pool);

    printf("bignum steps=%" PRIu64 " seed=%" PRIu64 " limbs_per_result=%.1f ops=%" PRIu64
           " checksum=0x%016" PRIx64 "\n",
           steps, seed, steps ? (double)limbs_seen / (double)steps : 0.0, ops, checksum);
    return 0;
}

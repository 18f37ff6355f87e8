/* A C file for the gcc test: enough code for the compiler to allocate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *left, *right;
    int key;
};

static struct node *insert(struct node *t, int key)
{
    if (t == NULL) {
        t = calloc(1, sizeof *t);
        t->key = key;
    } else if (key < t->key) {
        t->left = insert(t->left, key);
    } else {
        t->right = insert(t->right, key);
    }
    return t;
}

static long sum(const struct node *t)
{
    return t == NULL ? 0 : t->key + sum(t->left) + sum(t->right);
}

#define ROW 1, 2, 3, 4, 5, 6, 7, 8,
#define ROWS ROW ROW ROW ROW ROW ROW ROW ROW
static int table[] = {ROWS ROWS ROWS ROWS ROWS ROWS ROWS ROWS};

int main(void)
{
    struct node *t = NULL;
    unsigned x = 1;
    for (int i = 0; i < 10000; i++) {
        x = x * 1103515245 + 12345;
        t = insert(t, (int)(x >> 16));
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%ld %zu", sum(t), sizeof table / sizeof table[0]);
    puts(buf);
    return strlen(buf) > 0 ? 0 : 1;
}

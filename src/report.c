/* Reports: a fixed-buffer formatter and write(2), so that saying something
 * never allocates (stdio may), and the one routine that ends the process
 * on detected heap misuse.
 *
 * Formats: %s %d %ld %lu %zu %x %lx %p, with an optional '-' and width.
 */
#include <stdarg.h>

#include "internal.h"

static size_t put_char(char *buf, size_t cap, size_t n, char c)
{
    if (n + 1 < cap)
        buf[n] = c;
    return n + 1;
}

static size_t put_padded(char *buf, size_t cap, size_t n, const char *s, size_t len, int width,
                         bool left)
{
    size_t pad = width > 0 && (size_t)width > len ? (size_t)width - len : 0;
    if (!left)
        for (size_t i = 0; i < pad; i++)
            n = put_char(buf, cap, n, ' ');
    for (size_t i = 0; i < len; i++)
        n = put_char(buf, cap, n, s[i]);
    if (left)
        for (size_t i = 0; i < pad; i++)
            n = put_char(buf, cap, n, ' ');
    return n;
}

static size_t format_unsigned(char *tmp, unsigned long v, unsigned base)
{
    char rev[32];
    size_t len = 0;
    do {
        rev[len++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    for (size_t i = 0; i < len; i++)
        tmp[i] = rev[len - 1 - i];
    return len;
}

static size_t format_v(char *buf, size_t cap, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (const char *f = fmt; *f != '\0'; f++) {
        if (*f != '%') {
            n = put_char(buf, cap, n, *f);
            continue;
        }
        f++;
        bool left = false;
        int width = 0;
        if (*f == '-') {
            left = true;
            f++;
        }
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        bool is_long = false;
        if (*f == 'l' || *f == 'z') {
            is_long = true;
            f++;
        }
        char tmp[40];
        size_t len = 0;
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL)
                s = "(null)";
            size_t sl = 0;
            while (s[sl] != '\0')
                sl++;
            n = put_padded(buf, cap, n, s, sl, width, left);
            continue;
        }
        case 'd': {
            long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
            if (v < 0)
                tmp[len++] = '-';
            len += format_unsigned(tmp + len, u, 10);
            break;
        }
        case 'u':
            len = format_unsigned(tmp, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10);
            break;
        case 'x':
            len = format_unsigned(tmp, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16);
            break;
        case 'p':
            tmp[0] = '0';
            tmp[1] = 'x';
            len = 2 + format_unsigned(tmp + 2, (unsigned long)va_arg(ap, void *), 16);
            break;
        case '%':
            tmp[len++] = '%';
            break;
        default:
            tmp[len++] = '?';
            break;
        }
        n = put_padded(buf, cap, n, tmp, len, width, left);
    }
    if (cap > 0)
        buf[n < cap ? n : cap - 1] = '\0';
    return n < cap ? n : (cap > 0 ? cap - 1 : 0);
}

size_t ebbi_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_v(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void ebbi_message(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_v(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ebbi_os_write_stderr(buf, n);
}

void ebbi_fatal(const char *what, const void *addr)
{
    ebbi_message("ebbmalloc: error: %s (%p)\n", what, addr);
    ebbi_os_abort();
}

void ebbi_misuse(const char *what, const void *addr)
{
    if (ebbi_option(EBB_OPTION_ABORT_ON_ERROR))
        ebbi_fatal(what, addr);
    ebbi_message("ebbmalloc: warning: %s (%p), ignored\n", what, addr);
}

void ebbi_assert_failed(const char *what, const char *file, int line)
{
    ebbi_message("ebbmalloc: error: internal check failed: %s (%s:%d)\n", what, file, line);
    ebbi_os_abort();
}

/* text.c - see text.h. */
#include "text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    char *text = f != NULL ? malloc(TEXT_MAX + 1) : NULL;
    size_t n = text != NULL ? fread(text, 1, TEXT_MAX + 1, f) : 0;
    int saved = errno;

    if (f != NULL && (ferror(f) || n > TEXT_MAX)) {
        saved = n > TEXT_MAX ? EFBIG : EIO;
        free(text);
        text = NULL;
    }
    if (f != NULL)
        fclose(f);
    if (text != NULL)
        text[n] = '\0';
    errno = saved;
    return text;
}

void report_add(struct report *r, const char *fmt, ...)
{
    size_t used = strlen(r->why);
    va_list ap;

    if (r->problems++ > 0 && used + 2 < r->why_len) {
        memcpy(r->why + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    if (used + 1 < r->why_len)
        vsnprintf(r->why + used, r->why_len - used, fmt, ap);
    va_end(ap);
}

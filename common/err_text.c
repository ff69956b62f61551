/* err_text.c - the platform half of err.h on Linux: where a failed call
 * leaves its reason (errno), and that reason as text. err_text_win32.c is
 * the same for the Win32 twins; err.c, the rest, is shared by both. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int err_last(void) { return errno; }

void err_set_last(int err) { errno = err; }

const char *err_describe(int err, char *out, unsigned long len)
{
    const char *name = strerrorname_np(err);  /* "EAGAIN", glibc >= 2.32 */
    char text[128];

    snprintf(out, len, "%s: %s", name != NULL ? name : "E?",
             strerror_r(err, text, sizeof(text)));
    return out;
}

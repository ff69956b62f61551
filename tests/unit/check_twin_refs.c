/* check_twin_refs.c - NOTES.md §4's pointers into the Win32 twins.
 *
 * §4 maps every Win32 name the notes use to its Linux counterpart; a row
 * whose call a twin makes also says where, as `02-select/win32.c:188`. A
 * line number goes stale as soon as someone edits the twin above it, so
 * this suite ("twin-refs") checks every such pointer:
 *
 *   a. the file exists and has that line;
 *   b. the line names one of the identifiers written in backquotes in the
 *      row's first cell (its Win32 names: `select`, `WSAPoll`, ...), case
 *      and underscores aside (a pointer accept_ex names AcceptEx);
 *   c. every twin in the repository (NN-*\/win32.c) is pointed at at least
 *      once.
 *
 * When b fails, the message says where the name is now, so fixing NOTES.md
 * is a one-number edit. refs_check() works on a text and a root directory,
 * so the fixture test shows b catching a stale number.
 *
 * Step into it: CK_FORK=no CK_RUN_CASE=twin-refs gdb --args tests/check --unit
 */
#include "check_twin_refs.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runner/paths.h"
#include "unit/text.h"

#define WHY_MAX     4096
#define LINE_MAX_   1024
#define SECTION     "## 4."
#define TWIN_SUFFIX "/win32.c:"
#define TWINS_MAX   16

/* Line `wanted` (1-based) of the file into out; false if there is none. */
static bool read_line(const char *path, long wanted, char *out, size_t len)
{
    FILE *f = fopen(path, "re");
    long at = 0;

    if (f == NULL)
        return false;
    while (fgets(out, (int)len, f) != NULL)
        if (++at == wanted) {
            fclose(f);
            out[strcspn(out, "\n")] = '\0';
            return true;
        }
    fclose(f);
    return false;
}

/* The line (1-based) of the file naming word that is nearest to line
 * `near` (a pointer that went stale usually moved by a few lines), or 0. */
static long find_word(const char *path, const char *word, long near)
{
    char line[LINE_MAX_];
    FILE *f = fopen(path, "re");
    long at = 0, best = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        at++;
        if (strstr(line, word) != NULL &&
            (best == 0 || labs(at - near) < labs(best - near)))
            best = at;
    }
    fclose(f);
    return best;
}

/* The names in backquotes in the first cell of a table row: every
 * [A-Za-z0-9_] run of 4 or more characters inside each `...` (so
 * `OVERLAPPED.hEvent` gives OVERLAPPED and hEvent; `s` and `ev` of
 * `WSAEventSelect(s, ev, ...)` are too short to name anything), the
 * first name of the cell first. */
static size_t row_names(const char *row, size_t row_len, char names[][64],
                        size_t max)
{
    const char *cell = memchr(row, '|', row_len);
    const char *end =
        cell != NULL
            ? memchr(cell + 1, '|', row_len - (size_t)(cell + 1 - row))
            : NULL;
    size_t n = 0;
    bool quoted = false;

    for (const char *p = cell; p != NULL && p < end && n < max;) {
        if (*p == '`') {
            quoted = !quoted;
            p++;
            continue;
        }
        size_t k = 0;
        while (p + k < end && (isalnum((unsigned char)p[k]) || p[k] == '_'))
            k++;
        if (quoted && k >= 4 && k < 64) {
            memcpy(names[n], p, k);
            names[n++][k] = '\0';
        }
        p += k > 0 ? k : 1;
    }
    return n;
}

/* text without '_', lower case, into out: a twin that calls AcceptEx
 * through a pointer named accept_ex still names it. */
static char *fold(const char *text, char *out, size_t len)
{
    size_t n = 0;

    for (; *text != '\0' && n + 1 < len; text++)
        if (*text != '_')
            out[n++] = (char)tolower((unsigned char)*text);
    out[n] = '\0';
    return out;
}

/* Checks one pointer "DIR/win32.c:LINE" at ref in row. */
static void check_ref(const char *root, const char *row, size_t row_len,
                      const char *ref, struct report *r, char seen[][64],
                      size_t *seen_count)
{
    const char *suffix = strstr(ref, TWIN_SUFFIX);
    char file[64], path[PATH_MAX + 64], line[LINE_MAX_];
    char names[32][64];
    long number = strtol(suffix + strlen(TWIN_SUFFIX), NULL, 10);

    /* "02-select": a model directory's name is short. */
    snprintf(file, sizeof(file), "%.*s/win32.c", (int)(suffix - ref) % 48,
             ref);
    snprintf(path, sizeof(path), "%s/%s", root, file);
    bool known = false;  /* seen lists each twin once */
    for (size_t i = 0; i < *seen_count; i++)
        known = known || strcmp(seen[i], file) == 0;
    if (!known && *seen_count < TWINS_MAX)
        memcpy(seen[(*seen_count)++], file, sizeof(file));
    if (!read_line(path, number, line, sizeof(line))) {
        report_add(r, "NOTES §4 points at %s:%ld: no such line or file", file,
                   number);
        return;
    }
    size_t n = row_names(row, row_len, names, 32);
    char folded_line[LINE_MAX_], folded_name[64];
    fold(line, folded_line, sizeof(folded_line));
    for (size_t i = 0; i < n; i++)
        if (strstr(folded_line, fold(names[i], folded_name,
                                     sizeof(folded_name))) != NULL)
            return;
    long now = n > 0 ? find_word(path, names[0], number) : 0;
    if (now > 0)
        report_add(r, "NOTES §4 points at %s:%ld for `%s`, which that line "
                   "does not name; it is now at line %ld", file, number,
                   names[0], now);
    else
        report_add(r, "NOTES §4 points at %s:%ld, which names none of the "
                   "row's %zu names (first: `%s`)", file, number, n,
                   n > 0 ? names[0] : "?");
}

/* a and b for §4 of notes (its heading to the next "## "); the files are
 * read under root. Fills seen with the twins pointed at. Returns the
 * number of problems, described in why. */
static int refs_check(const char *notes, const char *root, char seen[][64],
                      size_t *seen_count, char *why, size_t why_len)
{
    struct report r = {.why = why, .why_len = why_len, .problems = 0};
    const char *start = strstr(notes, "\n" SECTION);
    const char *end = start != NULL ? strstr(start + 1, "\n## ") : NULL;

    why[0] = '\0';
    *seen_count = 0;
    if (start == NULL) {
        report_add(&r, "NOTES.md has no \"" SECTION "\" section");
        return r.problems;
    }
    if (end == NULL)
        end = start + strlen(start);
    for (const char *row = start + 1; row < end;) {
        size_t len = strcspn(row, "\n");
        for (const char *at = row; row[0] == '|' && at < row + len;) {
            const char *suffix = strstr(at, TWIN_SUFFIX);
            if (suffix == NULL || suffix >= row + len)
                break;
            const char *ref = suffix;
            while (ref > row && (isalnum((unsigned char)ref[-1]) ||
                                 ref[-1] == '-'))
                ref--;  /* back to the start of "02-select" */
            check_ref(root, row, len, ref, &r, seen, seen_count);
            at = suffix + strlen(TWIN_SUFFIX);
        }
        row += len + (row[len] == '\n');
    }
    return r.problems;
}

/* b: a number that went stale is caught, and the message says where the
 * name is now. */
START_TEST(test_twin_refs_stale_number_caught)
{
    char dir[] = "/tmp/twin-refs-XXXXXX", path[64], why[WHY_MAX];
    char seen[TWINS_MAX][64];
    size_t seen_count;
    const char *notes =
        "# N\n\n## 4. Map\n\n| Win32 | Linux |\n|---|---|\n"
        "| `select` | pselect, `02-x/win32.c:3` |\n"
        "| `WSAPoll` | poll, `02-x/win32.c:2` |\n\n## 5. Next\n";

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/02-x", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/02-x/win32.c", dir);
    FILE *f = fopen(path, "we");
    ck_assert_ptr_nonnull(f);
    fputs("int main(void)\n{\n    select(0, 0, 0, 0, 0);\n"
          "    WSAPoll(0, 0, 0);\n}\n", f);
    fclose(f);
    int problems = refs_check(notes, dir, seen, &seen_count, why, sizeof(why));
    unlink(path);
    snprintf(path, sizeof(path), "%s/02-x", dir);
    rmdir(path);
    rmdir(dir);
    ck_assert_int_eq(problems, 1);
    ck_assert_str_eq(why, "NOTES §4 points at 02-x/win32.c:2 for `WSAPoll`, "
                          "which that line does not name; it is now at "
                          "line 4");
    ck_assert_uint_eq(seen_count, 1);  /* one twin, pointed at twice */
}
END_TEST

/* a, b and c on the repository's NOTES.md and twins. */
START_TEST(test_twin_refs_repository)
{
    char root[PATH_MAX], path[PATH_MAX + 32], why[WHY_MAX] = "";
    char seen[TWINS_MAX][64];
    size_t seen_count = 0;
    glob_t g;

    ck_assert_msg(paths_source_root(root, sizeof(root)) == 0,
                  "cannot find the repository: %s", strerror(errno));
    snprintf(path, sizeof(path), "%s/NOTES.md", root);
    char *notes = read_text(path);
    ck_assert_msg(notes != NULL, "%s: %s", path, strerror(errno));
    int problems = refs_check(notes, root, seen, &seen_count, why, sizeof(why));
    free(notes);
    struct report r = {.why = why, .why_len = sizeof(why),
                       .problems = problems};
    snprintf(path, sizeof(path), "%s/[0-9][0-9]-*/win32.c", root);
    if (glob(path, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *file = g.gl_pathv[i] + strlen(root) + 1;
            bool found = false;
            for (size_t k = 0; k < seen_count; k++)
                found = found || strcmp(seen[k], file) == 0;
            if (!found)
                report_add(&r, "NOTES §4 points nowhere into %s", file);
        }
        globfree(&g);
    }
    ck_assert_msg(r.problems == 0, "%s", why);
}
END_TEST

void add_twin_refs_suites(SRunner *sr)
{
    Suite *s = suite_create("twin-refs");
    TCase *tc = tcase_create("twin-refs");

    tcase_add_test(tc, test_twin_refs_stale_number_caught);
    tcase_add_test(tc, test_twin_refs_repository);
    suite_add_tcase(s, tc);
    srunner_add_suite(sr, s);
}

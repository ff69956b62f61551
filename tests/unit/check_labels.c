/* check_labels.c - the step-label check: every model tells its story in
 * one vocabulary, so that a student who knows [S4] in one model finds it
 * in every other:
 *
 *   [S1] setup   [S2] wait   [S3] accept   [S4] read (or its completion)
 *   [S5] write (or its completion)   [S6] close   [S7] stop
 *   [S8] reserved (the idle timer): allowed, not required
 *
 * A sub-label ([S4a]) belongs to its parent: it counts as an [S4]. For each
 * model directory of the repository (NN-*, holding server.c):
 *
 *   a. server.c's header comment (its first comment) names [S1]..[S7],
 *      whose first occurrences come in that order: the loop's sketch;
 *   b. the code after the header names them too, first occurrences in the
 *      same order: the comments at the code each step is;
 *   c. README.md's "## Walkthrough" section (up to the next "## "
 *      heading) names them, first occurrences in order;
 *   d. no other label ([S9], [S0], [S12], [S4A]) appears in server.c or
 *      in the walkthrough.
 *
 * A model's Win32 twin, win32.c, when it has one, keeps a, b and d too:
 * the same skeleton, so that `diff server.c win32.c` shows only the API.
 *
 * labels_check() works on texts, so the fixture tests below show each rule
 * catching what it should, whatever state the models are in.
 *
 * Step into one: CK_FORK=no CK_RUN_CASE=labels:02-select \
 *                gdb --args tests/check --unit
 */
#include "check_labels.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/paths.h"
#include "unit/text.h"

#define LABEL_REQUIRED 7 /* [S1]..[S7] must appear */
#define LABEL_LAST     8 /* [S8] may */
#define WHY_MAX        4096
#define MODELS_MAX     32
#define WALKTHROUGH    "## Walkthrough"

/* The 1-based line of text[offset]. */
static int line_of(const char *text, size_t offset)
{
    int line = 1;

    for (size_t i = 0; i < offset; i++)
        line += text[i] == '\n';
    return line;
}

/* Does text[i, end) start with a label-like token, "[S" digits letters
 * "]"? Returns its length (0: no token here) and sets *step to 1..8 for a
 * label of the vocabulary (one digit 1..8, at most one lowercase letter),
 * or to 0 for any other ([S9], [S0], [S12], [S4A], [S4ab]). */
static size_t label_at(const char *text, size_t i, size_t end, int *step)
{
    size_t digits = i + 2, letters, close;

    if (end - i < 4 || text[i] != '[' || text[i + 1] != 'S')
        return 0;
    for (letters = digits;
         letters < end && isdigit((unsigned char)text[letters]); letters++)
        ;
    for (close = letters; close < end && isalpha((unsigned char)text[close]);
         close++)
        ;
    if (letters == digits || close == end || text[close] != ']')
        return 0;
    bool one_digit = letters - digits == 1 && text[digits] >= '1' &&
                     text[digits] <= '0' + LABEL_LAST;
    bool suffix_ok =
        close == letters ||
        (close - letters == 1 && islower((unsigned char)text[letters]));
    *step = one_digit && suffix_ok ? text[digits] - '0' : 0;
    return close + 1 - i;
}

/* Where each step's label first appears in text[from, to): offset + 1, or
 * 0 for nowhere. A stray label is reported when strays is not NULL. */
static void first_labels(const char *text, size_t from, size_t to,
                         size_t first[LABEL_LAST + 1], const char *where,
                         struct report *strays)
{
    memset(first, 0, sizeof(first[0]) * (LABEL_LAST + 1));
    for (size_t i = from; i < to; i++) {
        int step;
        size_t len = label_at(text, i, to, &step);
        if (len == 0)
            continue;
        if (step == 0 && strays != NULL)
            report_add(strays,
                       "%s: %.*s at line %d is not a step label ([S1]..[S8], "
                       "with at most one lowercase letter)",
                       where, (int)len, text + i, line_of(text, i));
        if (step != 0 && first[step] == 0)
            first[step] = i + 1;
        i += len - 1;
    }
}

/* [S1]..[S7] all there, first occurrences in increasing order. Each label
 * is compared with the latest first occurrence of a lower one, so every
 * label that comes too early is named. */
static void check_order(const char *text, const size_t first[LABEL_LAST + 1],
                        const char *where, struct report *r)
{
    int latest = 0;

    for (int k = 1; k <= LABEL_REQUIRED; k++) {
        if (first[k] == 0) {
            report_add(r, "%s: [S%d] missing", where, k);
            continue;
        }
        if (latest != 0 && first[k] < first[latest]) {
            report_add(r,
                       "%s: [S%d] first appears before [S%d], at line %d "
                       "([S%d] first at line %d)",
                       where, k, latest, line_of(text, first[k] - 1), latest,
                       line_of(text, first[latest] - 1));
            continue;
        }
        latest = k;
    }
}

/* a, b and d for server.c, or for its Win32 twin win32.c (file). */
static void check_server(const char *model, const char *file,
                         const char *text, struct report *r)
{
    size_t first[LABEL_LAST + 1], len = strlen(text);
    char where[128];
    const char *open = strstr(text, "/*");
    const char *close = open != NULL ? strstr(open + 2, "*/") : NULL;

    snprintf(where, sizeof(where), "%s/%s", model, file);
    first_labels(text, 0, len, first, where, r);
    if (close == NULL) {
        report_add(r, "%s: no header comment (/* ... */)", where);
        return;
    }
    size_t header_end = (size_t)(close + 2 - text);
    snprintf(where, sizeof(where), "%s/%s header comment", model, file);
    first_labels(text, (size_t)(open - text), header_end, first, where, NULL);
    check_order(text, first, where, r);
    snprintf(where, sizeof(where), "%s/%s code", model, file);
    first_labels(text, header_end, len, first, where, NULL);
    check_order(text, first, where, r);
}

/* c and d for README.md's walkthrough: from its heading, at the start of a
 * line, to the next "## " heading or the end. */
static void check_walkthrough(const char *model, const char *text,
                              struct report *r)
{
    size_t first[LABEL_LAST + 1];
    char where[128];
    const char *start = text;

    while (start != NULL &&
           strncmp(start, WALKTHROUGH, strlen(WALKTHROUGH)) != 0)
        start = strchr(start, '\n') != NULL ? strchr(start, '\n') + 1 : NULL;
    snprintf(where, sizeof(where), "%s/README.md " WALKTHROUGH, model);
    if (start == NULL) {
        report_add(r, "%s/README.md: no \"" WALKTHROUGH "\" section", model);
        return;
    }
    const char *end = strstr(start, "\n## ");
    size_t to = end != NULL ? (size_t)(end - text) : strlen(text);
    first_labels(text, (size_t)(start - text), to, first, where, r);
    check_order(text, first, where, r);
}

/* The whole check for one model, given the texts of its server.c, its
 * Win32 twin's win32.c (NULL when it has none yet) and README.md. Returns
 * the number of problems; their descriptions, each naming the file, the
 * label and what is wrong, go into why. */
static int labels_check(const char *model, const char *server_c,
                        const char *win32_c, const char *readme, char *why,
                        size_t why_len)
{
    struct report r = {.why = why, .why_len = why_len, .problems = 0};

    why[0] = '\0';
    check_server(model, "server.c", server_c, &r);
    if (win32_c != NULL)
        check_server(model, "win32.c", win32_c, &r);
    check_walkthrough(model, readme, &r);
    return r.problems;
}

/* ------------------------------------------------------------ fixtures */

/* The smallest model that keeps every rule: [S8] and a sub-label are
 * allowed, and the README's other sections are not checked. */
static const char fixture_server[] =
    "/* server.c - a fixture: the loop with every step.\n" /* line 1 */
    " *\n"
    " *   [S1] setup: listen\n"
    " *   [S2] wait for an event\n"
    " *   [S3] accept a client\n"
    " *   [S4] read what it sent\n"
    " *   [S5] write it back\n"
    " *   [S6] close it\n"
    " *   [S7] stop at SIGTERM\n"
    " */\n" /* line 10 */
    "int main(void)\n"
    "{\n"
    "    setup_listener(); /* [S1] */\n"
    "    for (;;) {\n"
    "        wait_for_events(); /* [S2] */\n"
    "        on_accept(); /* [S3] */\n"
    "        on_readable(); /* [S4] read; [S4a] at EOF */\n" /* line 17 */
    "        on_writable(); /* [S5] */\n"                    /* line 18 */
    "        conn_close(); /* [S6] */\n"
    "        on_idle(); /* [S8] the idle timer */\n"
    "    }\n"
    "    shutdown_all(); /* [S7] */\n"
    "}\n";

static const char fixture_readme[] =
    "# 00-fixture\n"
    "\n"
    "## Walkthrough\n"
    "\n"
    "[S1] listens, [S2] waits, [S3] accepts, [S4] reads, [S5] writes,\n"
    "[S6] closes, [S7] stops.\n"
    "\n"
    "### A subsection is still the walkthrough: [S4a]\n"
    "\n"
    "## Exercises\n"
    "\n"
    "Not checked: [S9], and [S7] before [S1].\n";

/* text with its first `from` replaced by `to` (malloc'd). */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    size_t head, len;
    char *out;

    ck_assert_msg(at != NULL, "fixture lacks \"%s\"", from);
    head = (size_t)(at - text);
    len = strlen(text) - strlen(from) + strlen(to);
    out = malloc(len + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, text, head);
    memcpy(out + head, to, strlen(to));
    strcpy(out + head + strlen(to), at + strlen(from));
    return out;
}

/* Runs the check on a server.c fixture with the README fixture. */
static int check_fixture(const char *server_c, char *why)
{
    return labels_check("fixture", server_c, NULL, fixture_readme, why,
                        WHY_MAX);
}

START_TEST(test_labels_fixture_correct_passes)
{
    char why[WHY_MAX];

    ck_assert_msg(check_fixture(fixture_server, why) == 0, "%s", why);
    ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(test_labels_fixture_out_of_order_fails)
{
    char why[WHY_MAX];
    /* [S4] and [S5] swapped in the code: [S5] now comes first, line 17. */
    char *a = replaced(fixture_server, "[S4] read; [S4a] at EOF", "[S5]");
    char *b =
        replaced(a, "on_writable(); /* [S5] */", "on_writable(); /* [S4] */");
    int problems = check_fixture(b, why);

    free(a);
    free(b);
    ck_assert_int_eq(problems, 1);
    ck_assert_str_eq(why, "fixture/server.c code: [S5] first appears before "
                          "[S4], at line 17 ([S4] first at line 18)");
}
END_TEST

START_TEST(test_labels_fixture_missing_fails)
{
    char why[WHY_MAX];
    char *text = replaced(fixture_server, " *   [S3] accept a client\n", "");
    int problems = check_fixture(text, why);

    free(text);
    ck_assert_int_eq(problems, 1);
    ck_assert_str_eq(why, "fixture/server.c header comment: [S3] missing");
}
END_TEST

START_TEST(test_labels_fixture_unknown_label_fails)
{
    char why[WHY_MAX];
    char *text = replaced(fixture_server, "[S8] the idle timer", "[S9] later");
    int problems = check_fixture(text, why);

    free(text);
    ck_assert_int_eq(problems, 1);
    ck_assert_msg(strstr(why, "fixture/server.c: [S9] at line 20 is not a "
                              "step label") == why,
                  "%s", why);
}
END_TEST

START_TEST(test_labels_fixture_sub_label_stands_for_parent)
{
    char why[WHY_MAX];
    /* Only [S4a] in the code: it is an [S4]. An uppercase suffix is not. */
    char *a = replaced(fixture_server, "[S4] read; [S4a] at EOF", "[S4a]");
    int problems = check_fixture(a, why);
    char *b = replaced(a, "[S4a]", "[S4A]");

    ck_assert_msg(problems == 0, "%s", why);
    problems = check_fixture(b, why);
    free(a);
    free(b);
    ck_assert_int_eq(problems, 2);
    ck_assert_msg(strstr(why, "[S4A] at line 17 is not a step label") != NULL,
                  "%s", why);
    ck_assert_msg(strstr(why, "code: [S4] missing") != NULL, "%s", why);
}
END_TEST

START_TEST(test_labels_fixture_walkthrough_checked)
{
    char why[WHY_MAX];
    char *none = replaced(fixture_readme, WALKTHROUGH, "## Tour");
    char *late = replaced(fixture_readme, "[S2] waits", "[S2] waits [S9]");
    int without =
        labels_check("fixture", fixture_server, NULL, none, why, WHY_MAX);

    ck_assert_str_eq(why, "fixture/README.md: no \"## Walkthrough\" section");
    int stray =
        labels_check("fixture", fixture_server, NULL, late, why, WHY_MAX);
    free(none);
    free(late);
    ck_assert_int_eq(without, 1);
    ck_assert_int_eq(stray, 1);
    ck_assert_msg(strstr(why, "fixture/README.md ## Walkthrough: [S9] at "
                              "line 5") != NULL,
                  "%s", why);
}
END_TEST

/* --------------------------------------------------------- the models */

/* Found before the tests fork, read by them: set once, like the matrix. */
static char source_root[PATH_MAX];
static char models[MODELS_MAX][NAME_MAX + 1];
static char case_names[MODELS_MAX][NAME_MAX + 16]; /* Check keeps pointers */
static size_t model_count;
static char find_error[PATH_MAX + 128];

START_TEST(test_labels_model)
{
    char path[PATH_MAX + NAME_MAX + 16], why[WHY_MAX] = "";
    const char *model = models[_i];

    snprintf(path, sizeof(path), "%s/%s/server.c", source_root, model);
    char *server_c = read_text(path);
    int server_errno = errno;
    snprintf(path, sizeof(path), "%s/%s/win32.c", source_root, model);
    char *win32_c = read_text(path); /* a model without a twin yet: NULL */
    snprintf(path, sizeof(path), "%s/%s/README.md", source_root, model);
    char *readme = read_text(path);
    int readme_errno = errno;
    int problems = server_c != NULL && readme != NULL
                       ? labels_check(model, server_c, win32_c, readme, why,
                                      sizeof(why))
                       : -1;
    free(server_c);
    free(win32_c);
    free(readme);
    ck_assert_msg(problems != -1,
                  "%s: cannot read server.c (%s) or "
                  "README.md (%s)",
                  model, strerror(server_errno), strerror(readme_errno));
    ck_assert_msg(problems == 0, "%s", why);
}
END_TEST

START_TEST(test_labels_models_found)
{
    ck_assert_msg(model_count > 0, "%s", find_error);
}
END_TEST

/* The model directories: [0-9][0-9]-*\/server.c under the source root,
 * as the Makefile finds them. */
static void find_models(void)
{
    char pattern[PATH_MAX + 32];
    glob_t g;

    if (paths_source_root(source_root, sizeof(source_root)) == -1) {
        snprintf(find_error, sizeof(find_error),
                 "cannot find the repository from this program: %s",
                 strerror(errno));
        return;
    }
    snprintf(pattern, sizeof(pattern), "%s/[0-9][0-9]-*/server.c", source_root);
    if (glob(pattern, 0, NULL, &g) != 0) {
        snprintf(find_error, sizeof(find_error), "no %s", pattern);
        return;
    }
    for (size_t i = 0; i < g.gl_pathc && model_count < MODELS_MAX; i++) {
        const char *dir = g.gl_pathv[i] + strlen(source_root) + 1;
        snprintf(models[model_count], sizeof(models[0]), "%.*s",
                 (int)strcspn(dir, "/"), dir);
        snprintf(case_names[model_count], sizeof(case_names[0]), "labels:%s",
                 models[model_count]);
        model_count++;
    }
    globfree(&g);
}

void add_labels_suites(SRunner *sr)
{
    Suite *s = suite_create("labels");
    TCase *tc = tcase_create("labels:fixtures");

    tcase_add_test(tc, test_labels_fixture_correct_passes);
    tcase_add_test(tc, test_labels_fixture_out_of_order_fails);
    tcase_add_test(tc, test_labels_fixture_missing_fails);
    tcase_add_test(tc, test_labels_fixture_unknown_label_fails);
    tcase_add_test(tc, test_labels_fixture_sub_label_stands_for_parent);
    tcase_add_test(tc, test_labels_fixture_walkthrough_checked);
    suite_add_tcase(s, tc);
    find_models();
    /* A check that found nothing to check must not look green. */
    tc = tcase_create("labels:models");
    tcase_add_test(tc, test_labels_models_found);
    suite_add_tcase(s, tc);
    for (size_t i = 0; i < model_count; i++) {
        tc = tcase_create(case_names[i]);
        tcase_add_loop_test(tc, test_labels_model, (int)i, (int)i + 1);
        suite_add_tcase(s, tc);
    }
    srunner_add_suite(sr, s);
}

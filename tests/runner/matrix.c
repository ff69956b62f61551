/* matrix.c - the model x scenario matrix (matrix.h).
 *
 * Every (row, scenario) is one Check test in its own TCase "row:scenario",
 * so CK_RUN_CASE picks one and the results map back to the matrix. The test
 * runs in Check's forked child: it starts a fresh server, runs the scenario
 * with the server's pid, stops it with SIGTERM and wants exit status 0.
 *
 * Check knows only pass and fail. A skip (the model is unavailable here) or
 * a pass that means "serialized, as it should be" is written by the child
 * to a notes file, which the parent reads for the report.
 */
#include "matrix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "generic.h"
#include "models.h"
#include "paths.h"
#include "scenarios/catalogue.h"
#include "scenarios/steps.h"
#include "server.h"

#define MAX_ROWS          32
#define MAX_CELLS         640
#define TIMEOUT_S         60  /* per test; Check's default 4 s is too short */
#define TIMEOUT_WRAPPED_S 180 /* valgrind: x3 */
#define REASON_MAX        400

enum cell_kind { CELL_CATALOGUE, CELL_RUNNER, CELL_SERIAL };
enum cell_state {
    STATE_NOT_RUN,
    STATE_OK,
    STATE_FAIL,
    STATE_SERIAL,
    STATE_SKIP
};

struct cell {
    const struct run_ctx *ctx;
    const char *scenario;
    const char *column;
    enum cell_kind kind;
    const struct scenario *sc;        /* CELL_CATALOGUE */
    const struct runner_scenario *rs; /* CELL_RUNNER */
    char name[128];                   /* "row:scenario", the TCase name */
    enum cell_state state;            /* filled in by matrix_report() */
    char reason[REASON_MAX];
};

/* Built before srunner_run_all() and read by the forked tests: the runner's
 * own state, set once, not shared with anything else. */
static struct run_ctx rows[MAX_ROWS];
static size_t row_count;
static struct cell cells[MAX_CELLS];
static size_t cell_count;
static char notes_path[64];
static int notes_fd = -1;

/* Short column headers for the catalogue (runner scenarios name theirs). */
static const struct {
    const char *scenario, *column;
} catalogue_columns[] = {
    {"single-byte", "1byte"},       {"all-byte-values", "bytes"},
    {"large-payload", "large"},     {"trickle", "trick"},
    {"pipelined", "pipe"},          {"sequential-clients", "seq"},
    {"concurrent-clients", "conc"}, {"half-close", "half"},
    {"reset-mid-stream", "reset"},  {"connect-and-close", "c+c"},
    {"idle-then-active", "idle"},   {"slow-reader", "slowrd"},
    {"slowloris", "loris"},         {"many-idle", "many"},
};

/* Scenarios an iterative server cannot pass by design: they need a second
 * client served while the first is connected. The runner checks instead
 * that the server serializes (runner_serialized). */
static const char *const need_concurrency[] = {
    "concurrent-clients", "slow-reader", "slowloris", "many-idle", NULL};

/* `make valgrind`: enough to exercise every code path, not every load. */
static const char *const valgrind_subset[] = {
    "single-byte",      "concurrent-clients", "half-close",
    "reset-mid-stream", "graceful-shutdown",  NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; list[i] != NULL; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static const char *catalogue_column(const char *scenario)
{
    size_t n = sizeof(catalogue_columns) / sizeof(catalogue_columns[0]);

    for (size_t i = 0; i < n; i++)
        if (strcmp(catalogue_columns[i].scenario, scenario) == 0)
            return catalogue_columns[i].column;
    return scenario;
}

/* In the test: records a skip or a serialized pass for the parent. */
static void note_outcome(int index, char kind, const char *reason)
{
    char line[REASON_MAX + 32];
    int n = snprintf(line, sizeof(line), "%d\t%c\t%s\n", index, kind, reason);

    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    line[n - 1] = '\n'; /* a cut reason still ends its line */
    /* O_APPEND and one write(2): lines from tests never interleave. */
    if (notes_fd == -1 || write(notes_fd, line, (size_t)n) != n)
        fprintf(stderr, "runner: could not note the outcome of %s\n",
                cells[index].name);
}

static enum outcome run_cell(const struct cell *c, char *why, size_t why_len)
{
    struct server s;
    enum outcome o;

    switch (c->kind) {
    case CELL_RUNNER:
        return c->rs->run(c->ctx, why, why_len);
    case CELL_SERIAL:
        return runner_serialized(c->ctx, why, why_len);
    case CELL_CATALOGUE:
        break;
    }
    o = runner_start(c->ctx, &s, NULL, NULL, why, why_len);
    if (o != OUTCOME_PASS)
        return o;
    struct target t = server_target(&s);
    o = c->sc->run(&t, why, why_len);
    return runner_finish(&s, o, why, why_len);
}

START_TEST(test_matrix_cell)
{
    const struct cell *c = &cells[_i];
    char why[REASON_MAX] = "";
    long long started = client_now_ms();
    enum outcome o = run_cell(c, why, sizeof(why));
    const char *shown = o == OUTCOME_FAIL        ? "FAIL"
                        : o == OUTCOME_SKIP      ? "skip"
                        : c->kind == CELL_SERIAL ? "serial"
                                                 : "ok";

    if (o == OUTCOME_SKIP)
        note_outcome(_i, 'S', why);
    else if (o == OUTCOME_PASS && c->kind == CELL_SERIAL)
        note_outcome(_i, 'R', "");
    /* Progress, so a long run is not silent (the time is information only:
     * it decides nothing). */
    printf("  %-6s %s (%.1f s)%s%s\n", shown, c->name,
           (double)(client_now_ms() - started) / 1000,
           o == OUTCOME_PASS ? "" : ": ", o == OUTCOME_PASS ? "" : why);
    fflush(stdout);
    if (o == OUTCOME_FAIL)
        ck_abort_msg("%s", why);
}
END_TEST

/* Is program in $PATH (for a third-party row)? */
static bool in_path(const char *program, char *found, size_t len)
{
    const char *path = getenv("PATH");

    for (const char *p = path; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ":");
        snprintf(found, len, "%.*s/%s", (int)n, p, program);
        if (access(found, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

static bool row_matches(const struct variant *v, const char *model)
{
    size_t n = model != NULL ? strlen(model) : 0;

    return model == NULL || strncmp(v->name, model, n) == 0 ||
           (v->dir != NULL && strncmp(v->dir, model, n) == 0);
}

static bool row_selected(const struct variant *v, const struct matrix_opts *o)
{
    if (o->threaded && !v->threaded)
        return false;
    if (o->win32 != v->win32) /* the twins run only with --win32 */
        return false;
    /* socat is the reference for the catalogue: not a TSan or valgrind
     * subject, and the runner scenarios test our servers' contract only. */
    return v->dir != NULL || (!o->threaded && !o->valgrind);
}

static void add_cell(Suite *suite, const struct run_ctx *ctx,
                     const char *scenario, const char *column,
                     enum cell_kind kind, int timeout)
{
    if (cell_count == MAX_CELLS) {
        fprintf(stderr, "runner: more than %d tests; raise MAX_CELLS\n",
                MAX_CELLS);
        return;
    }
    struct cell *c = &cells[cell_count];
    c->ctx = ctx;
    c->scenario = scenario;
    c->column = column;
    c->kind = kind;
    c->sc = kind == CELL_RUNNER ? NULL : scenario_find(scenario);
    c->rs = kind == CELL_RUNNER ? runner_scenario_find(scenario) : NULL;
    snprintf(c->name, sizeof(c->name), "%s:%s", ctx->v->name, scenario);
    TCase *tc = tcase_create(c->name);
    tcase_set_timeout(tc, timeout);
    tcase_add_loop_test(tc, test_matrix_cell, (int)cell_count,
                        (int)cell_count + 1);
    suite_add_tcase(suite, tc);
    cell_count++;
}

/* The debug build's servers sit beside their source; the others are under
 * build/<variant>/. */
static bool debug_build(const struct run_ctx *ctx)
{
    return strstr(ctx->binary, "/build/") == NULL;
}

static void add_row_cells(Suite *suite, const struct run_ctx *ctx,
                          const struct matrix_opts *o)
{
    const struct variant *v = ctx->v;
    int timeout = o->valgrind ? TIMEOUT_WRAPPED_S : TIMEOUT_S;

    for (size_t i = 0; i < scenario_count; i++) {
        const char *name = scenarios[i].name;
        if (o->valgrind && !in_list(valgrind_subset, name))
            continue;
        bool serial = v->iterative && in_list(need_concurrency, name);
        add_cell(suite, ctx, name, catalogue_column(name),
                 serial ? CELL_SERIAL : CELL_CATALOGUE, timeout);
    }
    for (size_t i = 0; i < runner_scenario_count && v->dir != NULL; i++) {
        const struct runner_scenario *rs = &runner_scenarios[i];
        if (v->win32 && rs->linux_only)
            continue;
        if (rs->generic && (!o->valgrind || in_list(valgrind_subset, rs->name)))
            add_cell(suite, ctx, rs->name, rs->column, CELL_RUNNER, timeout);
    }
    for (size_t i = 0; i < VARIANT_EXTRA && v->extra[i] && !o->valgrind; i++) {
        const struct runner_scenario *rs = runner_scenario_find(v->extra[i]);
        if (rs == NULL)
            fprintf(stderr, "runner: %s: no runner scenario is called '%s'\n",
                    v->name, v->extra[i]);
        else if (!rs->debug_only || debug_build(ctx))
            add_cell(suite, ctx, rs->name, rs->column, CELL_RUNNER, timeout);
    }
}

/* Sets ctx->binary; false when the row's server is not built. A twin is
 * build/win32/NN-model/win32.exe under the repository (`make win32`). */
static bool row_present(struct run_ctx *ctx, const char *root)
{
    if (ctx->v->dir == NULL)
        return in_path(ctx->v->args[0], ctx->binary, sizeof(ctx->binary));
    int n = ctx->v->win32
                ? snprintf(ctx->binary, sizeof(ctx->binary),
                           "%s/build/win32/%s/win32.exe", root, ctx->v->dir)
                : snprintf(ctx->binary, sizeof(ctx->binary), "%s/%s/server",
                           root, ctx->v->dir);
    if (n < 0 || n >= (int)sizeof(ctx->binary))
        return false; /* a path longer than PATH_MAX cannot be run anyway */
    return access(ctx->binary, X_OK) == 0;
}

static int open_notes(void)
{
    snprintf(notes_path, sizeof(notes_path), "/tmp/check-notes-XXXXXX");
    notes_fd = mkostemp(notes_path, O_APPEND | O_CLOEXEC);
    if (notes_fd == -1)
        fprintf(stderr, "runner: mkostemp(%s): %s\n", notes_path,
                strerror(errno));
    return notes_fd == -1 ? -1 : 0;
}

int matrix_add_suites(SRunner *sr, const struct matrix_opts *o)
{
    char root[PATH_MAX], missing[1024] = "";
    bool matched = false;

    if (paths_build_root(root, sizeof(root)) == -1) {
        fprintf(stderr, "runner: cannot set up: %s\n", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < variant_count && row_count < MAX_ROWS; i++) {
        struct run_ctx *ctx = &rows[row_count];
        if (!row_matches(&variants[i], o->model))
            continue;
        matched = true;
        if (!row_selected(&variants[i], o))
            continue;
        ctx->v = &variants[i];
        ctx->wrap = o->valgrind;
        if (!row_present(ctx, root)) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof(missing) - len, " %s",
                     variants[i].name);
            continue;
        }
        Suite *suite = suite_create(ctx->v->name);
        add_row_cells(suite, ctx, o);
        srunner_add_suite(sr, suite);
        row_count++;
    }
    if (!matched) {
        fprintf(stderr, "runner: no model or row matches '%s'\n", o->model);
        return -1;
    }
    /* Only now: an early exit leaves no notes file behind in /tmp. */
    if (cell_count > 0 && open_notes() == -1)
        return -1;
    if (missing[0] != '\0')
        printf("runner: not built, so not run:%s\n", missing);
    printf("runner: %zu rows, %zu tests, servers from %s\n", row_count,
           cell_count, root);
    fflush(stdout);
    return (int)row_count;
}

static struct cell *cell_named(const char *name)
{
    for (size_t i = 0; i < cell_count; i++)
        if (strcmp(cells[i].name, name) == 0)
            return &cells[i];
    return NULL;
}

/* The notes the tests wrote: "index \t S|R \t reason". */
static void read_notes(void)
{
    char line[REASON_MAX + 32];
    FILE *f = notes_fd != -1 ? fopen(notes_path, "re") : NULL;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *kind = strchr(line, '\t');
        long index = strtol(line, NULL, 10);
        if (kind == NULL || kind[1] == '\0' || index < 0 ||
            index >= (long)cell_count)
            continue;
        line[strcspn(line, "\n")] = '\0';
        struct cell *c = &cells[index];
        c->state = kind[1] == 'S' ? STATE_SKIP : STATE_SERIAL;
        snprintf(c->reason, sizeof(c->reason), "%s",
                 kind[2] == '\t' ? kind + 3 : "");
    }
    if (f != NULL)
        fclose(f);
    if (notes_fd != -1) {
        close(notes_fd);
        unlink(notes_path);
        notes_fd = -1;
    }
}

struct tally {
    int passed, failed, skipped;
};

/* Folds Check's results into the cells and the counts. */
static void apply_results(SRunner *sr, struct tally *t)
{
    TestResult **results = srunner_results(sr);
    int n = srunner_ntests_run(sr);

    for (int i = 0; i < n; i++) {
        struct cell *c = cell_named(tr_tcname(results[i]));
        bool passed = tr_rtype(results[i]) == CK_PASS;
        if (!passed)
            t->failed++;
        else if (c != NULL && c->state == STATE_SKIP)
            t->skipped++;
        else
            t->passed++;
        if (c == NULL)
            continue; /* a unit test */
        if (!passed) {
            c->state = STATE_FAIL;
            snprintf(c->reason, sizeof(c->reason), "%s", tr_msg(results[i]));
        } else if (c->state == STATE_NOT_RUN) {
            c->state = STATE_OK;
        }
    }
    free(results);
}

/* The matrix's columns: catalogue order, then runner scenarios; only those
 * some test used. Returns how many, names in out. */
static size_t matrix_columns(const char **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < scenario_count + runner_scenario_count; i++) {
        const char *name = i < scenario_count
                               ? scenarios[i].name
                               : runner_scenarios[i - scenario_count].name;
        bool used = false;
        for (size_t j = 0; j < cell_count && !used; j++)
            used = strcmp(cells[j].scenario, name) == 0;
        if (used && n < max)
            out[n++] = name;
    }
    return n;
}

static const char *state_text(enum cell_state s)
{
    static const char *const text[] = {"-", "ok", "FAIL", "serial", "skip"};

    return text[s];
}

static const struct cell *find_cell(const struct run_ctx *row,
                                    const char *scenario)
{
    for (size_t i = 0; i < cell_count; i++)
        if (cells[i].ctx == row && strcmp(cells[i].scenario, scenario) == 0)
            return &cells[i];
    return NULL;
}

static const char *column_of(const char *scenario)
{
    const struct runner_scenario *rs = runner_scenario_find(scenario);

    return rs != NULL ? rs->column : catalogue_column(scenario);
}

static void print_legend(const char **columns, size_t n)
{
    int width = printf("columns:");

    for (size_t i = 0; i < n; i++) {
        if (width > 60)
            width = printf("\n        ") - 1;
        width += printf(" %s=%s%s", column_of(columns[i]), columns[i],
                        i + 1 < n ? "," : "");
    }
    printf("\ncells: ok passed, FAIL failed, serial = served one client at a "
           "time (checked),\n       skip = not available here (reason "
           "below), - = not run\n");
}

static void print_matrix(void)
{
    const char *columns[64];
    size_t n = matrix_columns(columns, 64);
    int label = 8;

    for (size_t r = 0; r < row_count; r++)
        if ((int)strlen(rows[r].v->name) > label)
            label = (int)strlen(rows[r].v->name);
    printf("\n%-*s", label, "model");
    for (size_t i = 0; i < n; i++)
        printf(" %-*s", i + 1 < n ? 6 : 0, column_of(columns[i]));
    printf("\n");
    for (size_t r = 0; r < row_count; r++) {
        printf("%-*s", label, rows[r].v->name);
        for (size_t i = 0; i < n; i++) {
            const struct cell *c = find_cell(&rows[r], columns[i]);
            printf(" %-*s", i + 1 < n ? 6 : 0,
                   c != NULL ? state_text(c->state) : "-");
        }
        printf("\n");
    }
    print_legend(columns, n);
}

static void print_problems(SRunner *sr)
{
    TestResult **results = srunner_results(sr);
    int n = srunner_ntests_run(sr), failed = 0, skipped = 0;

    for (int i = 0; i < n; i++) {
        if (tr_rtype(results[i]) == CK_PASS)
            continue;
        if (failed++ == 0)
            printf("\nfailed:\n");
        printf("  %s: %s", tr_tcname(results[i]), tr_msg(results[i]));
        if (cell_named(tr_tcname(results[i])) == NULL)
            printf(" (%s:%d)", tr_lfile(results[i]), tr_lno(results[i]));
        printf("\n");
    }
    free(results);
    for (size_t i = 0; i < cell_count; i++) {
        if (cells[i].state != STATE_SKIP)
            continue;
        if (skipped++ == 0)
            printf("\nskipped:\n");
        /* A row whose model is unavailable skips every test for one reason:
         * say it once. */
        size_t same = 1;
        while (i + same < cell_count && cells[i + same].ctx == cells[i].ctx &&
               cells[i + same].state == STATE_SKIP &&
               strcmp(cells[i + same].reason, cells[i].reason) == 0)
            same++;
        if (same == 1)
            printf("  %s: %s\n", cells[i].name, cells[i].reason);
        else
            printf("  %s: %zu tests: %s\n", cells[i].ctx->v->name, same,
                   cells[i].reason);
        i += same - 1;
    }
}

int matrix_report(SRunner *sr)
{
    struct tally t = {0, 0, 0};

    read_notes();
    apply_results(sr, &t);
    if (row_count > 0)
        print_matrix();
    print_problems(sr);
    printf("\n%d passed, %d failed", t.passed, t.failed);
    if (t.skipped > 0)
        printf(", %d skipped", t.skipped);
    printf("\n");
    fflush(stdout);
    return t.failed;
}

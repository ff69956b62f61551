/* paths.c - where tests/check finds what it tests (see paths.h). */
#include "paths.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Cuts the last path component off path; -1 (ENOENT) if there is none. */
static int cut_last(char *path)
{
    char *slash = strrchr(path, '/');

    if (slash == NULL || slash == path) {
        errno = ENOENT;
        return -1;
    }
    *slash = '\0';
    return 0;
}

int paths_build_root(char *root, size_t len)
{
    /* /proc/self/exe, not argv[0]: right whatever the current directory. */
    ssize_t n = readlink("/proc/self/exe", root, len - 1);

    if (n == -1)
        return -1;
    root[n] = '\0';
    /* .../tests/check -> ... */
    if (cut_last(root) == -1 || cut_last(root) == -1)
        return -1;
    return 0;
}

int paths_source_root(char *root, size_t len)
{
    if (paths_build_root(root, len) == -1)
        return -1;
    /* The debug build's root holds the Makefile: it is the repository.
     * Asking first keeps a repository that itself sits in a directory
     * called build/ from being cut short. */
    size_t have = strlen(root);
    if (have + sizeof("/Makefile") > len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(root + have, "/Makefile", sizeof("/Makefile"));
    int is_repo = access(root, F_OK) == 0;
    root[have] = '\0';
    if (is_repo)
        return 0;
    /* build/<variant>: two components up, if the first of them is build. */
    char *variant = strrchr(root, '/');
    if (variant == NULL || variant - root < 6 ||
        strncmp(variant - 6, "/build", 6) != 0) {
        errno = ENOENT;
        return -1;
    }
    variant[-6] = '\0';
    return 0;
}

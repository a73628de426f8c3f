/* cdrecon CLI — where outputs may go (see paths.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdrecon/outdir.h"
#include "paths.h"

struct cli_path_ent {
    cli_path_role role;
    const char *what;
    const char *path;  /* as given (messages) */
    char *joined;      /* owned, when added as DIR/NAME */
    char *canon;       /* resolved: realpath of the longest existing prefix + the rest */
    int exists;        /* stat() succeeded (links followed) */
    int comparable;    /* a regular file or a directory, or not existing */
    struct stat st;
};

void cli_paths_init(cli_paths *ps)
{
    memset(ps, 0, sizeof *ps);
}

static cli_path_ent *add(cli_paths *ps)
{
    if (ps->n == ps->cap) {
        size_t nc = ps->cap ? ps->cap * 2 : 16;
        cli_path_ent *v = realloc(ps->v, nc * sizeof *v);
        if (!v) {
            ps->oom = 1;
            return NULL;
        }
        ps->v = v;
        ps->cap = nc;
    }
    cli_path_ent *e = &ps->v[ps->n++];
    memset(e, 0, sizeof *e);
    return e;
}

void cli_paths_add(cli_paths *ps, cli_path_role role, const char *what, const char *path)
{
    if (!path || !*path || strcmp(path, "-") == 0)
        return;
    cli_path_ent *e = add(ps);
    if (!e)
        return;
    e->role = role;
    e->what = what;
    e->path = path;
}

void cli_paths_add_in(cli_paths *ps, cli_path_role role, const char *what, const char *dir,
                      const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *j = malloc(n);
    if (!j) {
        ps->oom = 1;
        return;
    }
    snprintf(j, n, "%s/%s", dir, name);
    cli_path_ent *e = add(ps);
    if (!e) {
        free(j);
        return;
    }
    e->role = role;
    e->what = what;
    e->path = e->joined = j;
}

void cli_paths_free(cli_paths *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->v[i].joined);
        free(ps->v[i].canon);
    }
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

/* The path resolved: realpath() of its longest existing prefix, then the
 * components that do not exist yet ("." dropped, ".." taking one off). */
static char *canonical(const char *path)
{
    char *r = realpath(path, NULL);
    if (r)
        return r;
    size_t n = strlen(path);
    char *head = strdup(path);
    if (!head)
        return NULL;
    /* cut components off the end until what is left resolves */
    size_t cut = n;
    char *base = NULL;
    for (;;) {
        while (cut > 0 && head[cut - 1] == '/')
            cut--;
        while (cut > 0 && head[cut - 1] != '/')
            cut--;
        head[cut] = '\0';
        if (cut == 0) {
            base = realpath(path[0] == '/' ? "/" : ".", NULL);
            break;
        }
        if ((base = realpath(head, NULL)) != NULL)
            break;
    }
    if (!base) {
        free(head);
        return NULL;
    }
    size_t cap = strlen(base) + (n - cut) + 2;
    char *out = malloc(cap);
    if (!out) {
        free(base);
        free(head);
        return NULL;
    }
    strcpy(out, base);
    free(base);
    char *rest = strdup(path + cut), *save = NULL;
    if (!rest) {
        free(out);
        free(head);
        return NULL;
    }
    for (char *t = strtok_r(rest, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, "."))
            continue;
        if (!strcmp(t, "..")) {
            char *s = strrchr(out, '/');
            if (s && s != out)
                *s = '\0';
            else
                strcpy(out, "/");
            continue;
        }
        size_t l = strlen(out);
        if (!(l == 1 && out[0] == '/'))
            out[l++] = '/';
        strcpy(out + l, t);
    }
    free(rest);
    free(head);
    return out;
}

static int same(const cli_path_ent *a, const cli_path_ent *b)
{
    if (!a->comparable || !b->comparable)
        return 0;
    if (a->exists && b->exists)
        return a->st.st_dev == b->st.st_dev && a->st.st_ino == b->st.st_ino;
    return a->canon && b->canon && strcmp(a->canon, b->canon) == 0;
}

/* Is a in the directory d (directly)? */
static int inside(const cli_path_ent *a, const cli_path_ent *d)
{
    if (!a->canon || !d->canon)
        return 0;
    const char *s = strrchr(a->canon, '/');
    if (!s)
        return 0;
    size_t pl = s == a->canon ? 1 : (size_t)(s - a->canon);
    return strlen(d->canon) == pl && strncmp(a->canon, d->canon, pl) == 0;
}

static int is_out(cli_path_role r)
{
    return r == CLI_PATH_OUTPUT || r == CLI_PATH_OUTDIR;
}

cdr_err cli_paths_check(cli_paths *ps, char *err, size_t errlen)
{
    if (ps->oom) {
        snprintf(err, errlen, "out of memory");
        return CDR_E_NOMEM;
    }
    for (size_t i = 0; i < ps->n; i++) {
        cli_path_ent *e = &ps->v[i];
        e->exists = stat(e->path, &e->st) == 0;
        e->comparable = !e->exists || S_ISREG(e->st.st_mode) || S_ISDIR(e->st.st_mode);
        if (!(e->canon = canonical(e->path)) && errno == ENOMEM) {
            snprintf(err, errlen, "out of memory");
            return CDR_E_NOMEM;
        }
    }
    for (size_t i = 0; i < ps->n; i++) {
        const cli_path_ent *a = &ps->v[i];
        for (size_t j = 0; j < ps->n; j++) {
            const cli_path_ent *b = &ps->v[j];
            if (i == j)
                continue;
            const char *why = NULL;
            if (b->role == CLI_PATH_TARIFF && a->role != CLI_PATH_INPUT &&
                a->role != CLI_PATH_TARIFF) {
                if (same(a, b))
                    why = "is the tariff directory";
                else if (inside(a, b))
                    why = "is inside the tariff directory";
            } else if (a->role == CLI_PATH_OUTPUT && same(a, b) &&
                       (j < i || !is_out(b->role))) {
                why = b->role == CLI_PATH_OUTPUT ? "is also another output"
                      : b->role == CLI_PATH_DB   ? "is the database"
                      : b->role == CLI_PATH_OUTDIR ? "is an output directory"
                                                 : "is an input";
            } else if (a->role == CLI_PATH_OUTDIR && b->role != CLI_PATH_OUTDIR && same(a, b)) {
                why = b->role == CLI_PATH_DB ? "is the database" : "is an input";
            } else if (a->role == CLI_PATH_DB && b->role == CLI_PATH_INPUT && same(a, b)) {
                why = "is also an input";
            }
            if (why) {
                snprintf(err, errlen,
                         "%s %s %s (%s %s): refused, nothing was read or written (give "
                         "another %s)",
                         a->what, a->path, why, b->what, b->path,
                         a->role == CLI_PATH_DB ? "database" : is_out(a->role) ? "output"
                                                                              : "path");
                return CDR_E_USAGE;
            }
        }
    }
    return CDR_OK;
}

void cli_paths_add_inputs(cli_paths *ps, char *const *files, int nfiles, const char *store,
                          const char *profile, const char *tariff_dir)
{
    for (int i = 0; i < nfiles; i++)
        cli_paths_add(ps, CLI_PATH_INPUT, "CDR file", files[i]);
    cli_paths_add(ps, CLI_PATH_INPUT, "--store", store);
    cli_paths_add(ps, CLI_PATH_INPUT, "--profile", profile);
    cli_paths_add(ps, CLI_PATH_TARIFF, "--tariff", tariff_dir);
}

void cli_paths_add_outdir(cli_paths *ps, const char *dir, const char *const *names, size_t n,
                          const char *what)
{
    cli_paths_add(ps, CLI_PATH_OUTDIR, "--out", dir);
    for (size_t i = 0; i < n; i++)
        cli_paths_add_in(ps, CLI_PATH_OUTPUT, what, dir, names[i]);
}

cdr_err cli_run_paths_check(const char *tariff_dir, const char *db_path, const char *out_dir,
                            const char *store_path, const char *profile_path,
                            char *const *files, int nfiles, char *err, size_t errlen)
{
    static const char *const outs[] = {"findings.csv", "candidates.csv", "rejects.csv",
                                        "unrated.csv", "changes.csv", "report.html"};
    cli_paths ps;
    cli_paths_init(&ps);
    cli_paths_add_inputs(&ps, files, nfiles, NULL, profile_path, tariff_dir);
    cli_paths_add(&ps, CLI_PATH_DB, "--db", db_path);
    cli_paths_add_outdir(&ps, out_dir, outs, sizeof outs / sizeof *outs, "output");
    cli_paths_add(&ps, CLI_PATH_OUTDIR, "state directory (--store)", store_path);
    cdr_err e = cli_paths_check(&ps, err, errlen);
    cli_paths_free(&ps);
    return e;
}

/* ---------------------------------------------------------------- 2 */

cdr_err cli_outdir_open(cli_outdir *d, const char *path, unsigned flags, char *err,
                        size_t errlen)
{
    cdr_err e = CDR_OK;
    d->path = path;
    d->fd = cdr_dir_open(path, flags, NULL, &e, err, errlen);
    return d->fd < 0 ? e : CDR_OK;
}

cdr_err cli_outdir_open_parent(cli_outdir *d, const char *path, const char **name, char *err,
                               size_t errlen)
{
    d->fd = -1;
    d->path = path;
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    if (!**name || !strcmp(*name, ".") || !strcmp(*name, "..")) {
        snprintf(err, errlen, "%s: give a file name, not a directory", path);
        return CDR_E_USAGE;
    }
    char *dir;
    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) {
        snprintf(err, errlen, "out of memory");
        return CDR_E_NOMEM;
    }
    cdr_err e = CDR_OK;
    d->fd = cdr_dir_open(dir, CDR_DIR_FOLLOW_LAST, NULL, &e, err, errlen);
    free(dir);
    return d->fd < 0 ? e : CDR_OK;
}

void cli_outdir_close(cli_outdir *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

cdr_err cli_outdir_csvw(cli_outdir *d, const char *name, unsigned flags, cdr_csvw **w,
                        char *err, size_t errlen)
{
    return cdr_csvw_openat(d->fd, d->path, name, flags, w, err, errlen);
}


cdr_err cli_output_file(const char *path, const char *what, cdr_csvw **w, FILE **direct,
                        char *err, size_t errlen)
{
    *w = NULL;
    *direct = NULL;
    if (strcmp(path, "-") == 0)
        return cdr_csvw_open_stream(stdout, "standard output", w);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        /* /dev/null, /dev/stdout, a FIFO: written directly, never replaced */
        FILE *fp = fopen(path, "w");
        if (!fp) {
            snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
            return CDR_E_IO;
        }
        cdr_err e = cdr_csvw_open_stream(fp, path, w);
        if (e != CDR_OK) {
            fclose(fp);
            snprintf(err, errlen, "%s %s: %s", what, path, cdr_strerror(e));
            return e;
        }
        *direct = fp;
        return CDR_OK;
    }
    cli_outdir d;
    const char *name;
    char m[1024];
    cdr_err e = cli_outdir_open_parent(&d, path, &name, m, sizeof m);
    if (e == CDR_OK) {
        char *dir = strndup(path, (size_t)(name - path));
        if (!dir) {
            e = CDR_E_NOMEM;
            snprintf(m, sizeof m, "out of memory");
        } else {
            size_t dl = strlen(dir);
            if (dl > 1 && dir[dl - 1] == '/')
                dir[dl - 1] = '\0';
            e = cdr_csvw_openat(d.fd, dl ? dir : ".", name, 0, w, m, sizeof m);
            free(dir);
        }
        cli_outdir_close(&d);
    }
    if (e != CDR_OK)
        snprintf(err, errlen, "cannot open %s %s: %s", what, path, m);
    return e;
}

/* ---- where a database's month state is ---- */

/* The database's directory, resolved (for state paths recorded relative
 * to it). */
static int db_dir(const char *db_path, char *buf, size_t len)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", db_path);
    char *slash = strrchr(tmp, '/');
    const char *dir = ".";
    if (slash == tmp)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = tmp;
    }
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return -1;
    snprintf(buf, len, "%s", real);
    return 0;
}

int cli_state_dir_resolve(const char *db_path, const char *recorded, char *buf, size_t len)
{
    if (recorded[0] == '/') {
        snprintf(buf, len, "%s", recorded);
        return 0;
    }
    char dir[PATH_MAX];
    if (db_dir(db_path, dir, sizeof dir) != 0)
        return -1;
    int n = snprintf(buf, len, "%s/%s", strcmp(dir, "/") ? dir : "", recorded);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int cli_state_dir_record(const char *db_path, const char *real, char *buf, size_t len)
{
    char dir[PATH_MAX];
    if (db_dir(db_path, dir, sizeof dir) != 0)
        return -1;
    size_t dl = strcmp(dir, "/") ? strlen(dir) : 0;
    if (strncmp(real, dir, dl) == 0 && real[dl] == '/' && real[dl + 1] != '\0')
        snprintf(buf, len, "%s", real + dl + 1); /* beside or under the database */
    else
        snprintf(buf, len, "%s", real);
    return 0;
}

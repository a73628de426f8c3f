/* cdrecon evidence — the evidence pack for a complaint reply (docs/evidence.md):
 * build the statement, let the library write the pack, print the pages to PDF
 * with headless Chromium when it is installed, then write the manifest. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cdrecon/evidence.h"
#include "cdrecon/filehash.h"
#include "cdrecon/tariff.h"
#include "ingest.h"
#include "opts.h"
#include "paths.h"

enum { O_OUT = 1, O_DATE, O_OPERATOR, O_FORCE, O_NO_PDF, O_CHROMIUM, O_RUN_ID };
static const cli_opt evidence_opts[] = {
    {"--out", 0, CLI_OPT_VALUE, "DIR",
     "the pack directory: created; refused if it exists and is\n"
     "not empty (exit 12) unless --force", O_OUT},
    {"--date", 0, CLI_OPT_VALUE, "YYYY-MM-DD",
     "refund date in the SMS, deadlines count from it (default today)", O_DATE},
    {"--operator", 0, CLI_OPT_VALUE, "NAME", "operator name closing the SMS (default 中国移动)",
     O_OPERATOR},
    {"--force", 0, 0, NULL, "replace the files of an existing pack in DIR", O_FORCE},
    {"--no-pdf", 0, 0, NULL, "do not print PDFs", O_NO_PDF},
    {"--chromium", 0, CLI_OPT_VALUE, "PATH",
     "the browser used for the PDFs (default: chromium or\n"
     "chromium-browser in PATH, or $CDRECON_CHROMIUM)", O_CHROMIUM},
    {"--run-id", 0, CLI_OPT_VALUE, "ID", "the run id shown in the pack (default: generated)",
     O_RUN_ID},
    {NULL, 0, 0, NULL, NULL, 0},
};
static const cli_opt *const evidence_tables[] = {
    cli_subject_opts, evidence_opts, cli_tariff_opts, cli_engine_opts, cli_profile_opts, NULL};
static const cli_spec evidence_spec = {
    "evidence",
    "cdrecon evidence --msisdn N --month YYYY-MM --out DIR --tariff DIR [options] FILES...\n"
    "cdrecon evidence --msisdn N --month YYYY-MM --out DIR --db FILE [--tariff DIR]\n"
    "cdrecon evidence --msisdn N --month YYYY-MM --out DIR --cluster DIR [--tariff DIR]",
    "The evidence pack for a complaint reply: one number's month re-rated from the\n"
    "tariff, written to DIR as internal/ and customer/ copies of evidence.html (and\n"
    "evidence.pdf when Chromium is installed) and records.csv, customer/sms.txt\n"
    "(the refund notification SMS) and DIR/manifest (SHA-256 of every input).\n"
    "The FILES are rated with the tariff DIR; the profile's SHA-256 (--profile)\n"
    "goes into the manifest.\n",
    evidence_tables,
    "exit status: 0 ok; 11 the number has no record in that month; 12 DIR holds a\n"
    "pack already; 1 usage; other codes: docs/exit-codes.md\n",
    0,
};

/* ---- the reproducing command ---- */

static void shell_quote(FILE *m, const char *a)
{
    int plain = *a != '\0';
    for (const char *p = a; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+,@%",
                    *p))
            plain = 0;
    if (plain) {
        fputs(a, m);
        return;
    }
    fputc('\'', m);
    for (const char *p = a; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", m);
        else
            fputc(*p, m);
    }
    fputc('\'', m);
}

/* ---- printing with Chromium ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static char *find_in_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char *dup = strdup(path), *save = NULL;
    if (!dup)
        return NULL;
    for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        size_t n = strlen(d) + strlen(name) + 2;
        char *c = malloc(n);
        if (!c)
            break;
        snprintf(c, n, "%s/%s", d, name);
        if (access(c, X_OK) == 0) {
            free(dup);
            return c;
        }
        free(c);
    }
    free(dup);
    return NULL;
}

static char *find_chromium(const char *given)
{
    if (given)
        return strdup(given);
    const char *env = getenv("CDRECON_CHROMIUM");
    if (env && *env)
        return strdup(env);
    static const char *const names[] = {"chromium", "chromium-browser", "google-chrome", NULL};
    for (int i = 0; names[i]; i++) {
        char *p = find_in_path(names[i]);
        if (p)
            return p;
    }
    return NULL;
}

/* file:// URL of an absolute path (percent-encoding all but safe bytes). */
static char *file_url(const char *path)
{
    size_t n = strlen(path);
    char *u = malloc(7 + 3 * n + 1), *q = u;
    if (!u)
        return NULL;
    q += sprintf(q, "file://");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/-_.~", *p))
            *q++ = (char)*p;
        else
            q += sprintf(q, "%%%02X", *p);
    }
    *q = '\0';
    return u;
}

/* Print html to pdf_out; 0 on success, else -1 with a message in err. */
static int print_pdf(const char *chromium, const char *tmpdir, const char *html,
                     const char *pdf_out, char *err, size_t errlen)
{
    char prof[4200], logp[4200], pdfarg[4300], profarg[4300];
    snprintf(prof, sizeof prof, "%s/profile", tmpdir);
    snprintf(logp, sizeof logp, "%s/chromium.log", tmpdir);
    snprintf(pdfarg, sizeof pdfarg, "--print-to-pdf=%s", pdf_out);
    snprintf(profarg, sizeof profarg, "--user-data-dir=%s", prof);
    char *url = file_url(html);
    if (!url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *av[] = {(char *)chromium, "--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions",
                  "--no-pdf-header-footer", profarg, pdfarg, url, NULL};
    pid_t pid = fork();
    if (pid < 0) {
        free(url);
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(chromium, av);
        _exit(127);
    }
    free(url);
    setpgid(pid, pid);
    int status = 0, waited = 0;
    for (int ms = 0; ms < 120000; ms += 50) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            waited = 1;
            break;
        }
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!waited) {
        kill(-pid, SIGKILL); /* the browser's own process group */
        waitpid(pid, &status, 0);
        snprintf(err, errlen, "%.300s did not finish in 120 s (killed)", chromium);
        return -1;
    }
    /* Reap helpers left in the group, if any. */
    kill(-pid, SIGKILL);
    struct stat st;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || stat(pdf_out, &st) != 0 ||
        st.st_size < 100) {
        snprintf(err, errlen, "%.300s failed (exit %d); its log: %.200s", chromium,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, logp);
        return -1;
    }
    return 0;
}

/* ---- the pack, step by step ---- */

/* What the steps of `evidence` share. */
typedef struct ev_job {
    const char *msisdn_arg, *month_arg, *out_dir, *tariff_dir, *store_path, *db_path;
    const char *cluster_dir, *profile_path, *date_arg, *operator_name, *chromium_arg, *run_id;
    char cluster_db[PATH_MAX];
    int help, force, no_pdf;
    cdr_engine_opts eo;
    char **files;            /* the CDR files, or the month state's files (have_src) */
    int nfiles;
    cli_state_src src;
    int have_src;
    cdr_profile *prof;
    cdr_ev_input prof_input;
    char *source;
    cdr_tariff *t;
    cdr_stmt s;
    int have_stmt;
    cdr_evidence *ev;
    cdr_ev_input *inputs;
    char run_buf[64], created[32], cwd[4096], tmpdir[4096];
    char *command, *chromium;
    size_t command_len;
    cdr_month month;
    cdr_time date;
} ev_job;

/* The arguments, checked; the paths of the pack against the inputs; the
 * profile loaded. j->help after --help. */
static int ev_args(ev_job *j, int argc, char **argv)
{
    int rc = CDR_OK;
    const char *v;
    cli_args args;
    cli_args_init(&args, &evidence_spec, argc, argv);
    for (int id; rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        v = args.val;
        switch (id) {
        case CLI_ARG_HELP: j->help = 1; return CDR_OK;
        case CLI_ARG_ERR: rc = CDR_E_USAGE; break;
        case CLI_ARG_POS:
            if (!strcmp(v, "-"))
                rc = cli_fail(CDR_E_USAGE, "standard input cannot be evidence: give the file "
                                           "(its SHA-256 goes into the manifest)");
            j->files[j->nfiles++] = argv[args.i - 1];
            break;
        case CLI_O_PROFILE: rc = cli_profile_value(v, &j->profile_path); break;
        case CLI_O_MSISDN: j->msisdn_arg = v; break;
        case CLI_O_MONTH: j->month_arg = v; break;
        case CLI_O_STORE: j->store_path = v; break;
        case CLI_O_DB: j->db_path = v; break;
        case CLI_O_CLUSTER: j->cluster_dir = v; break;
        case CLI_O_TARIFF: j->tariff_dir = v; break;
        case O_OUT: j->out_dir = v; break;
        case O_DATE: j->date_arg = v; break;
        case O_OPERATOR: j->operator_name = v; break;
        case O_CHROMIUM: j->chromium_arg = v; break;
        case O_RUN_ID: j->run_id = v; break;
        case O_FORCE: j->force = 1; break;
        case O_NO_PDF: j->no_pdf = 1; break;
        default: rc = cli_engine_value(id, v, &j->eo); break;
        }
    }
    if (rc != CDR_OK)
        return rc;
    if (j->cluster_dir && (rc = cli_cluster_db(j->cluster_dir, j->msisdn_arg, &j->db_path,
                                                j->store_path, j->cluster_db,
                                                sizeof j->cluster_db)) != CDR_OK)
        return rc;
    if (!j->msisdn_arg || !j->month_arg || !j->out_dir || !*j->msisdn_arg || !*j->month_arg ||
        !*j->out_dir) {
        cli_help(&evidence_spec, stderr);
        rc = cli_fail(CDR_E_USAGE, "--msisdn, --month and --out are required");
        return rc;
    }
    if ((j->store_path || j->db_path) ? j->nfiles != 0 || (j->store_path && j->db_path)
                                      : (!j->tariff_dir || !*j->tariff_dir || j->nfiles == 0)) {
        rc = cli_fail(CDR_E_USAGE, "give --tariff DIR and the CDR FILES of the month, "
                                   "or --db FILE (or --store DIR) without FILES");
        return rc;
    }
    /* No file of the pack may be an input (--force removes the pack's own
     * names first: a CDR file named DIR/internal/records.csv would go), and
     * the pack must not go into the tariff directory. */
    {
        static const char *const pack[] = {
            "manifest",               "internal",               "customer",
            "internal/evidence.html", "internal/evidence.pdf",
            "internal/records.csv",   "customer/evidence.html", "customer/evidence.pdf",
            "customer/records.csv",   "customer/sms.txt"};
        cli_paths ps;
        char perr[2048];
        cli_paths_init(&ps);
        cli_paths_add_inputs(&ps, j->files, j->nfiles, j->store_path, j->profile_path,
                             j->tariff_dir);
        cli_paths_add_outdir(&ps, j->out_dir, pack, sizeof pack / sizeof *pack, "pack file");
        rc = cli_paths_check(&ps, perr, sizeof perr);
        cli_paths_free(&ps);
        if (rc != CDR_OK) {
            cli_fail(rc, "%s", perr);
            return rc;
        }
    }
    if (cdr_month_parse(j->month_arg, strlen(j->month_arg), &j->month) != CDR_OK) {
        rc = cli_fail(CDR_E_USAGE, "bad --month '%s' (YYYY-MM)", j->month_arg);
        return rc;
    }
    if (j->profile_path && (j->store_path || j->db_path)) {
        rc = cli_fail(CDR_E_USAGE, "--profile is for reading CDR FILES, not the month state");
        return rc;
    }
    return cli_profile_load(j->profile_path, &j->prof);
}

/* The time the pack is made, the refund date and run id (defaults), checked
 * before any work, and the command that reproduces the pack. */
static int ev_stamp(ev_job *j, int argc, char **argv)
{
    int rc = CDR_OK;
    char err[1024];
    {
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(j->created, sizeof j->created, "%Y-%m-%d %H:%M:%S", &tmv);
        if (!j->date_arg) {
            cdr_date_parse(j->created, 10, &j->date);
        } else if (cdr_date_parse(j->date_arg, strlen(j->date_arg), &j->date) != CDR_OK) {
            rc = cli_fail(CDR_E_USAGE, "bad --date '%s' (YYYY-MM-DD)", j->date_arg);
            return rc;
        }
        if (!j->run_id) {
            char stamp[32];
            strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tmv);
            snprintf(j->run_buf, sizeof j->run_buf, "ev-%s-%ld", stamp, (long)getpid());
            j->run_id = j->run_buf;
        }
    }
    {
        /* a bad --operator or --date is said before any work */
        cdr_evidence_opts chk;
        memset(&chk, 0, sizeof chk);
        chk.operator_name = j->operator_name;
        chk.refund_date = j->date;
        if ((rc = cdr_evidence_check_opts(&chk, err, sizeof err)) != CDR_OK) {
            rc = cli_fail(CDR_E_USAGE, "bad %s: %s", rc == CDR_E_RANGE ? "--date" : "--operator",
                          err);
            return rc;
        }
    }
    if (!getcwd(j->cwd, sizeof j->cwd))
        j->cwd[0] = '\0';

    /* The command that reproduces the pack: as given, with the date and run id fixed. */
    {
        FILE *m = open_memstream(&j->command, &j->command_len);
        if (!m) {
            rc = cli_fail(CDR_E_NOMEM, "command line");
            return rc;
        }
        fputs("cdrecon evidence", m);
        for (int i = 1; i < argc; i++) {
            fputc(' ', m);
            shell_quote(m, argv[i]);
        }
        if (!j->date_arg) {
            char d[16];
            cdr_date_format(j->date, d);
            fprintf(m, " --date %s", d);
        }
        if (j->run_id == j->run_buf)
            fprintf(m, " --run-id %s", j->run_id);
        fclose(m);
    }
    return rc;
}

/* The inputs of a pack from the month state: its files of the month. */
static int state_inputs(ev_job *j)
{
    int rc = CDR_OK;
    j->nfiles = 0;
    for (size_t i = 0; i < j->src.m.n_live; i++) {
        cdr_state_kind k;
        cdr_month fm;
        int64_t rid;
        if (cdr_state_file_parse(j->src.m.live[i], &k, &fm, &rid) == 0 && fm == j->month)
            j->nfiles++;
    }
    char **nf = realloc(j->files, ((size_t)j->nfiles + 1) * sizeof *nf);
    if (!nf) {
        rc = cli_fail(CDR_E_NOMEM, "inputs");
        return rc;
    }
    j->files = nf;
    j->nfiles = 0;
    for (size_t i = 0; i < j->src.m.n_live; i++) {
        cdr_state_kind k;
        cdr_month fm;
        int64_t rid;
        if (cdr_state_file_parse(j->src.m.live[i], &k, &fm, &rid) != 0 || fm != j->month)
            continue;
        size_t l = strlen(j->src.dir) + strlen(j->src.m.live[i]) + 2;
        if (!(j->files[j->nfiles] = malloc(l))) {
            rc = cli_fail(CDR_E_NOMEM, "inputs");
            return rc;
        }
        snprintf(j->files[j->nfiles++], l, "%s/%s", j->src.dir, j->src.m.live[i]);
    }
    size_t sl = strlen(j->src.dir) + 64 + (j->src.m.db_path ? strlen(j->src.m.db_path) : 0);
    if ((j->source = malloc(sl)))
        snprintf(j->source, sl, "month state %s (database %s)", j->src.dir,
                 j->src.m.db_path ? j->src.m.db_path : "?");
    return rc;
}

/* The tariff, the inputs' hashes, the statement. */
static int ev_statement(ev_job *j)
{
    int rc = CDR_OK;
    char err[1024];
    cdr_str num;
    char nb[CDR_NUMBER_MAX + 1];
    if (cdr_number_normalise(j->msisdn_arg, strlen(j->msisdn_arg), &num) != CDR_OK) {
        rc = cli_fail(CDR_E_USAGE, "--msisdn is not a phone number (digits, optional +)");
        return rc;
    }
    memcpy(nb, num.p, num.n);
    nb[num.n] = '\0';
    if (j->store_path || j->db_path) {
        /* the inputs are the month's state files */
        int other = 0;
        if ((rc = cli_state_open(&j->src, j->db_path, j->store_path)) != CDR_OK)
            return rc;
        j->have_src = 1;
        rc = cli_state_tariff(&j->src, nb, j->month, j->tariff_dir, &j->eo, &j->t, &other);
        if (rc == CDR_OK && other)
            cli_err("note: rated with %s, not the tariff the month was last rated with",
                    j->tariff_dir);
        if (rc != CDR_OK && rc != CDR_E_NOTFOUND)
            return rc;
        if ((rc = state_inputs(j)) != CDR_OK)
            return rc;
    } else if ((rc = cdr_tariff_load(j->tariff_dir, &j->t, err, sizeof err)) != CDR_OK) {
        cli_fail(rc, "tariff %s: %s", j->tariff_dir, err);
        return rc;
    }
    if (j->t)
        cli_tariff_warnings(j->t);
    j->inputs = calloc((size_t)j->nfiles + 1, sizeof *j->inputs);
    if (!j->inputs) {
        rc = cli_fail(CDR_E_NOMEM, "inputs");
        return rc;
    }
    for (int i = 0; i < j->nfiles; i++) {
        j->inputs[i].path = j->files[i];
        if ((rc = cdr_file_sha256(j->files[i], j->inputs[i].sha256, &j->inputs[i].size)) !=
            CDR_OK) {
            cli_fail(rc, "%s: %s", j->files[i], strerror(errno));
            return rc;
        }
    }
    err[0] = '\0';
    if (j->have_src) {
        rc = j->t ? cdr_stmt_from_state(j->t, j->src.st, nb, j->month, &j->eo, &j->s, err,
                                        sizeof err)
             : cdr_stmt_init(&j->s, nb, j->month) == CDR_OK ? CDR_E_NOTFOUND
                                                             : CDR_E_NOMEM;
        j->have_stmt = 1;
    } else {
        cdr_reader_opts ro;
        cdr_reader_opts_init(&ro);
        ro.profile = j->prof;
        rc = cdr_stmt_scan_ro(j->t, j->files, (size_t)j->nfiles, j->msisdn_arg, j->month,
                              &j->eo, &ro, NULL, &j->s, err, sizeof err);
        j->have_stmt = 1;
    }
    if (rc == CDR_E_NOTFOUND) {
        char mk[CDR_NUMBER_MAX + 1];
        const char *n = j->s.msisdn ? j->s.msisdn : "";
        cdr_number_mask(n, strlen(n), mk);
        cli_fail(rc, "%s has no record in %s; no pack written", mk, j->month_arg);
        return rc;
    }
    if (rc != CDR_OK) {
        cli_fail(rc, "%s", err[0] ? err : "reading the records");
        return rc;
    }
    return rc;
}

/* The PDFs of the pack's copies, printed by Chromium (when found);
 * *pdf_failed when one could not be printed. */
static int ev_pdfs(ev_job *j, int *pdf_failed)
{
    int rc = CDR_OK;
    if (!j->no_pdf) {
        j->chromium = find_chromium(j->chromium_arg);
        if (!j->chromium) {
            cli_err("note: Chromium not found: no evidence.pdf (install it: "
                    "sh tools/install-deps.sh, or print evidence.html from a browser)");
        } else {
            const char *td = getenv("TMPDIR");
            snprintf(j->tmpdir, sizeof j->tmpdir, "%s/cdrecon-evidence-XXXXXX",
                     td && *td ? td : "/tmp");
            if (!mkdtemp(j->tmpdir)) {
                rc = cli_fail(CDR_E_IO, "cannot create a temporary directory: %s",
                              strerror(errno));
                j->tmpdir[0] = '\0';
                return rc;
            }
            for (int c = 0; c < CDR_EV__COPIES && !*pdf_failed; c++) {
                char pdf[4200], html[4200], perr[600];
                snprintf(pdf, sizeof pdf, "%s/%s.pdf", j->tmpdir,
                         cdr_ev_copy_name((cdr_ev_copy)c));
                snprintf(html, sizeof html, "%s",
                         cdr_evidence_path(j->ev, (cdr_ev_copy)c, "evidence.html"));
                if (print_pdf(j->chromium, j->tmpdir, html, pdf, perr, sizeof perr) != 0) {
                    cli_err("PDF of the %s copy: %s", cdr_ev_copy_name((cdr_ev_copy)c), perr);
                    *pdf_failed = 1;
                } else if ((rc = cdr_evidence_add_file(j->ev, (cdr_ev_copy)c, "evidence.pdf",
                                                       pdf)) != CDR_OK) {
                    cli_fail(rc, "%s", cdr_evidence_errmsg(j->ev));
                    return rc;
                }
            }
        }
    }
    return rc;
}

/* The pack written (with its PDFs unless --no-pdf) and finished. */
static int ev_pack(ev_job *j)
{
    int rc = CDR_OK, pdf_failed = 0;
    char err[1024];
    if ((rc = cdr_evidence_open(j->out_dir, j->force ? CDR_EV_FORCE : 0, &j->ev, err,
                                sizeof err)) != CDR_OK) {
        cli_fail(rc, "%s", err);
        return rc;
    }
    cdr_evidence_opts o;
    memset(&o, 0, sizeof o);
    o.operator_name = j->operator_name;
    o.refund_date = j->date;
    o.created = j->created;
    o.run_id = j->run_id;
    o.command = j->command;
    o.cwd = j->cwd;
    o.source = j->source ? j->source : "scan";
    o.tariff = j->t;
    o.inputs = j->inputs;
    o.n_inputs = (size_t)j->nfiles;
    if (j->prof) {
        j->prof_input.path = cdr_profile_path(j->prof);
        j->prof_input.size = cdr_profile_size(j->prof);
        memcpy(j->prof_input.sha256, cdr_profile_sha256(j->prof), 32);
        o.profile = &j->prof_input;
    }
    if ((rc = cdr_evidence_write(j->ev, &j->s, &o)) != CDR_OK) {
        cli_fail(rc, "%s", cdr_evidence_errmsg(j->ev));
        return rc;
    }

    if ((rc = ev_pdfs(j, &pdf_failed)) != CDR_OK)
        return rc;
    if ((rc = cdr_evidence_finish(j->ev)) != CDR_OK) {
        cli_fail(rc, "%s", cdr_evidence_errmsg(j->ev));
        return rc;
    }
    {
        char m1[32], mk[CDR_NUMBER_MAX + 1];
        cdr_number_mask(j->s.msisdn, strlen(j->s.msisdn), mk);
        if (j->s.has_candidate) {
            cdr_money_format(j->s.cand.refund, 2, m1);
            fprintf(stderr, "cdrecon: evidence: %s %s: refund %s yuan; pack in %s\n", mk,
                    j->month_arg, m1, j->out_dir);
        } else {
            fprintf(stderr, "cdrecon: evidence: %s %s: no overcharge; pack in %s\n", mk,
                    j->month_arg, j->out_dir);
        }
    }
    if (pdf_failed)
        rc = cli_fail(CDR_E_IO, "the pack is complete except the PDF");
    return rc;
}

int cmd_evidence(int argc, char **argv)
{
    ev_job *j = calloc(1, sizeof *j);
    int rc;
    if (!j || !(j->files = calloc((size_t)argc + 1, sizeof *j->files))) {
        free(j);
        return CDR_E_NOMEM;
    }
    cli_engine_opts_init(&j->eo);
    if ((rc = ev_args(j, argc, argv)) == CDR_OK && !j->help &&
        (rc = ev_stamp(j, argc, argv)) == CDR_OK && (rc = ev_statement(j)) == CDR_OK)
        rc = ev_pack(j);
    if (j->tmpdir[0])
        nftw(j->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cdr_evidence_free(j->ev);
    if (j->have_stmt)
        cdr_stmt_free(&j->s);
    cdr_tariff_free(j->t);
    if (j->have_src) {
        for (int i = 0; i < j->nfiles; i++)
            free(j->files[i]);
        cli_state_close(&j->src);
    }
    cdr_profile_free(j->prof);
    free(j->source);
    free(j->inputs);
    free(j->command);
    free(j->chromium);
    free(j->files);
    free(j);
    return rc;
}

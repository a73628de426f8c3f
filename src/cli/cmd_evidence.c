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

int cmd_evidence(int argc, char **argv)
{
    const char *msisdn_arg = NULL, *month_arg = NULL, *out_dir = NULL, *tariff_dir = NULL;
    const char *store_path = NULL, *db_path = NULL, *cluster_dir = NULL, *profile_path = NULL;
    char cluster_db[PATH_MAX];
    cli_state_src src;
    int have_src = 0;
    cdr_profile *prof = NULL;
    cdr_ev_input prof_input;
    char *source = NULL;
    const char *date_arg = NULL, *operator_name = NULL, *chromium_arg = NULL, *run_id = NULL;
    const char *v;
    int force = 0, no_pdf = 0;
    cdr_engine_opts eo;
    cli_engine_opts_init(&eo);
    char **files = calloc((size_t)argc + 1, sizeof *files);
    int nfiles = 0;
    int rc = CDR_OK;
    cdr_tariff *t = NULL;
    cdr_stmt s;
    int have_stmt = 0;
    cdr_evidence *ev = NULL;
    cdr_ev_input *inputs = NULL;
    char err[1024], run_buf[64], created[32], cwd[4096] = "";
    char *command = NULL, *chromium = NULL, tmpdir[4096] = "";
    size_t command_len = 0;
    cdr_month month = 0;
    cdr_time date = 0;

    memset(&s, 0, sizeof s);
    if (!files)
        return CDR_E_NOMEM;
    cli_args args;
    cli_args_init(&args, &evidence_spec, argc, argv);
    for (int id; rc == CDR_OK && (id = cli_args_next(&args)) != CLI_ARG_END;) {
        v = args.val;
        switch (id) {
        case CLI_ARG_HELP: free(files); return CDR_OK;
        case CLI_ARG_ERR: rc = CDR_E_USAGE; break;
        case CLI_ARG_POS:
            if (!strcmp(v, "-"))
                rc = cli_fail(CDR_E_USAGE, "standard input cannot be evidence: give the file "
                                           "(its SHA-256 goes into the manifest)");
            files[nfiles++] = argv[args.i - 1];
            break;
        case CLI_O_PROFILE: rc = cli_profile_value(v, &profile_path); break;
        case CLI_O_MSISDN: msisdn_arg = v; break;
        case CLI_O_MONTH: month_arg = v; break;
        case CLI_O_STORE: store_path = v; break;
        case CLI_O_DB: db_path = v; break;
        case CLI_O_CLUSTER: cluster_dir = v; break;
        case CLI_O_TARIFF: tariff_dir = v; break;
        case O_OUT: out_dir = v; break;
        case O_DATE: date_arg = v; break;
        case O_OPERATOR: operator_name = v; break;
        case O_CHROMIUM: chromium_arg = v; break;
        case O_RUN_ID: run_id = v; break;
        case O_FORCE: force = 1; break;
        case O_NO_PDF: no_pdf = 1; break;
        default: rc = cli_engine_value(id, v, &eo); break;
        }
    }
    if (rc != CDR_OK)
        goto out;
    if (cluster_dir && (rc = cli_cluster_db(cluster_dir, msisdn_arg, &db_path, store_path,
                                            cluster_db, sizeof cluster_db)) != CDR_OK)
        goto out;
    if (!msisdn_arg || !month_arg || !out_dir || !*msisdn_arg || !*month_arg || !*out_dir) {
        cli_help(&evidence_spec, stderr);
        rc = cli_fail(CDR_E_USAGE, "--msisdn, --month and --out are required");
        goto out;
    }
    if ((store_path || db_path) ? nfiles != 0 || (store_path && db_path)
                                : (!tariff_dir || !*tariff_dir || nfiles == 0)) {
        rc = cli_fail(CDR_E_USAGE, "give --tariff DIR and the CDR FILES of the month, "
                                   "or --db FILE (or --store DIR) without FILES");
        goto out;
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
        cli_paths_add_inputs(&ps, files, nfiles, store_path, profile_path, tariff_dir);
        cli_paths_add_outdir(&ps, out_dir, pack, sizeof pack / sizeof *pack, "pack file");
        rc = cli_paths_check(&ps, perr, sizeof perr);
        cli_paths_free(&ps);
        if (rc != CDR_OK) {
            cli_fail(rc, "%s", perr);
            goto out;
        }
    }
    if (cdr_month_parse(month_arg, strlen(month_arg), &month) != CDR_OK) {
        rc = cli_fail(CDR_E_USAGE, "bad --month '%s' (YYYY-MM)", month_arg);
        goto out;
    }
    if (profile_path && (store_path || db_path)) {
        rc = cli_fail(CDR_E_USAGE, "--profile is for reading CDR FILES, not the month state");
        goto out;
    }
    if ((rc = cli_profile_load(profile_path, &prof)) != CDR_OK)
        goto out;
    {
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S", &tmv);
        if (!date_arg) {
            cdr_date_parse(created, 10, &date);
        } else if (cdr_date_parse(date_arg, strlen(date_arg), &date) != CDR_OK) {
            rc = cli_fail(CDR_E_USAGE, "bad --date '%s' (YYYY-MM-DD)", date_arg);
            goto out;
        }
        if (!run_id) {
            char stamp[32];
            strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tmv);
            snprintf(run_buf, sizeof run_buf, "ev-%s-%ld", stamp, (long)getpid());
            run_id = run_buf;
        }
    }
    {
        /* a bad --operator or --date is said before any work */
        cdr_evidence_opts chk;
        memset(&chk, 0, sizeof chk);
        chk.operator_name = operator_name;
        chk.refund_date = date;
        if ((rc = cdr_evidence_check_opts(&chk, err, sizeof err)) != CDR_OK) {
            rc = cli_fail(CDR_E_USAGE, "bad %s: %s", rc == CDR_E_RANGE ? "--date" : "--operator",
                          err);
            goto out;
        }
    }
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';

    /* The command that reproduces the pack: as given, with the date and run id fixed. */
    {
        FILE *m = open_memstream(&command, &command_len);
        if (!m) {
            rc = cli_fail(CDR_E_NOMEM, "command line");
            goto out;
        }
        fputs("cdrecon evidence", m);
        for (int i = 1; i < argc; i++) {
            fputc(' ', m);
            shell_quote(m, argv[i]);
        }
        if (!date_arg) {
            char d[16];
            cdr_date_format(date, d);
            fprintf(m, " --date %s", d);
        }
        if (run_id == run_buf)
            fprintf(m, " --run-id %s", run_id);
        fclose(m);
    }

    /* The tariff, the inputs' hashes, the statement. */
    cdr_str num;
    char nb[CDR_NUMBER_MAX + 1];
    if (cdr_number_normalise(msisdn_arg, strlen(msisdn_arg), &num) != CDR_OK) {
        rc = cli_fail(CDR_E_USAGE, "--msisdn is not a phone number (digits, optional +)");
        goto out;
    }
    memcpy(nb, num.p, num.n);
    nb[num.n] = '\0';
    if (store_path || db_path) {
        /* the inputs are the month's state files */
        int other = 0;
        if ((rc = cli_state_open(&src, db_path, store_path)) != CDR_OK)
            goto out;
        have_src = 1;
        rc = cli_state_tariff(&src, nb, month, tariff_dir, &eo, &t, &other);
        if (rc == CDR_OK && other)
            cli_err("note: rated with %s, not the tariff the month was last rated with",
                    tariff_dir);
        if (rc != CDR_OK && rc != CDR_E_NOTFOUND)
            goto out;
        nfiles = 0;
        for (size_t i = 0; i < src.m.n_live; i++) {
            cdr_state_kind k;
            cdr_month fm;
            int64_t rid;
            if (cdr_state_file_parse(src.m.live[i], &k, &fm, &rid) == 0 && fm == month)
                nfiles++;
        }
        char **nf = realloc(files, ((size_t)nfiles + 1) * sizeof *nf);
        if (!nf) {
            rc = cli_fail(CDR_E_NOMEM, "inputs");
            goto out;
        }
        files = nf;
        nfiles = 0;
        for (size_t i = 0; i < src.m.n_live; i++) {
            cdr_state_kind k;
            cdr_month fm;
            int64_t rid;
            if (cdr_state_file_parse(src.m.live[i], &k, &fm, &rid) != 0 || fm != month)
                continue;
            size_t l = strlen(src.dir) + strlen(src.m.live[i]) + 2;
            if (!(files[nfiles] = malloc(l))) {
                rc = cli_fail(CDR_E_NOMEM, "inputs");
                goto out;
            }
            snprintf(files[nfiles++], l, "%s/%s", src.dir, src.m.live[i]);
        }
        size_t sl = strlen(src.dir) + 64 + (src.m.db_path ? strlen(src.m.db_path) : 0);
        if ((source = malloc(sl)))
            snprintf(source, sl, "month state %s (database %s)", src.dir,
                     src.m.db_path ? src.m.db_path : "?");
    } else if ((rc = cdr_tariff_load(tariff_dir, &t, err, sizeof err)) != CDR_OK) {
        cli_fail(rc, "tariff %s: %s", tariff_dir, err);
        goto out;
    }
    if (t)
        cli_tariff_warnings(t);
    inputs = calloc((size_t)nfiles + 1, sizeof *inputs);
    if (!inputs) {
        rc = cli_fail(CDR_E_NOMEM, "inputs");
        goto out;
    }
    for (int i = 0; i < nfiles; i++) {
        inputs[i].path = files[i];
        if ((rc = cdr_file_sha256(files[i], inputs[i].sha256, &inputs[i].size)) != CDR_OK) {
            cli_fail(rc, "%s: %s", files[i], strerror(errno));
            goto out;
        }
    }
    err[0] = '\0';
    if (have_src) {
        rc = t ? cdr_stmt_from_state(t, src.st, nb, month, &eo, &s, err, sizeof err)
               : cdr_stmt_init(&s, nb, month) == CDR_OK ? CDR_E_NOTFOUND : CDR_E_NOMEM;
        have_stmt = 1;
    } else {
        cdr_reader_opts ro;
        cdr_reader_opts_init(&ro);
        ro.profile = prof;
        rc = cdr_stmt_scan_ro(t, files, (size_t)nfiles, msisdn_arg, month, &eo, &ro, NULL, &s,
                              err, sizeof err);
        have_stmt = 1;
    }
    if (rc == CDR_E_NOTFOUND) {
        char mk[CDR_NUMBER_MAX + 1];
        cdr_number_mask(s.msisdn ? s.msisdn : "", s.msisdn ? strlen(s.msisdn) : 0, mk);
        cli_fail(rc, "%s has no record in %s; no pack written", mk, month_arg);
        goto out;
    }
    if (rc != CDR_OK) {
        cli_fail(rc, "%s", err[0] ? err : "reading the records");
        goto out;
    }

    /* The pack. */
    if ((rc = cdr_evidence_open(out_dir, force ? CDR_EV_FORCE : 0, &ev, err, sizeof err)) !=
        CDR_OK) {
        cli_fail(rc, "%s", err);
        goto out;
    }
    cdr_evidence_opts o;
    memset(&o, 0, sizeof o);
    o.operator_name = operator_name;
    o.refund_date = date;
    o.created = created;
    o.run_id = run_id;
    o.command = command;
    o.cwd = cwd;
    o.source = source ? source : "scan";
    o.tariff = t;
    o.inputs = inputs;
    o.n_inputs = (size_t)nfiles;
    if (prof) {
        prof_input.path = cdr_profile_path(prof);
        prof_input.size = cdr_profile_size(prof);
        memcpy(prof_input.sha256, cdr_profile_sha256(prof), 32);
        o.profile = &prof_input;
    }
    if ((rc = cdr_evidence_write(ev, &s, &o)) != CDR_OK) {
        cli_fail(rc, "%s", cdr_evidence_errmsg(ev));
        goto out;
    }

    int pdf_failed = 0;
    if (!no_pdf) {
        chromium = find_chromium(chromium_arg);
        if (!chromium) {
            cli_err("note: Chromium not found: no evidence.pdf (install it: "
                    "sh tools/install-deps.sh, or print evidence.html from a browser)");
        } else {
            const char *td = getenv("TMPDIR");
            snprintf(tmpdir, sizeof tmpdir, "%s/cdrecon-evidence-XXXXXX", td && *td ? td : "/tmp");
            if (!mkdtemp(tmpdir)) {
                rc = cli_fail(CDR_E_IO, "cannot create a temporary directory: %s",
                              strerror(errno));
                tmpdir[0] = '\0';
                goto out;
            }
            for (int c = 0; c < CDR_EV__COPIES && !pdf_failed; c++) {
                char pdf[4200], html[4200], perr[600];
                snprintf(pdf, sizeof pdf, "%s/%s.pdf", tmpdir, cdr_ev_copy_name((cdr_ev_copy)c));
                snprintf(html, sizeof html, "%s",
                         cdr_evidence_path(ev, (cdr_ev_copy)c, "evidence.html"));
                if (print_pdf(chromium, tmpdir, html, pdf, perr, sizeof perr) != 0) {
                    cli_err("PDF of the %s copy: %s", cdr_ev_copy_name((cdr_ev_copy)c), perr);
                    pdf_failed = 1;
                } else if ((rc = cdr_evidence_add_file(ev, (cdr_ev_copy)c, "evidence.pdf",
                                                       pdf)) != CDR_OK) {
                    cli_fail(rc, "%s", cdr_evidence_errmsg(ev));
                    goto out;
                }
            }
        }
    }
    if ((rc = cdr_evidence_finish(ev)) != CDR_OK) {
        cli_fail(rc, "%s", cdr_evidence_errmsg(ev));
        goto out;
    }
    {
        char m1[32], mk[CDR_NUMBER_MAX + 1];
        cdr_number_mask(s.msisdn, strlen(s.msisdn), mk);
        if (s.has_candidate) {
            cdr_money_format(s.cand.refund, 2, m1);
            fprintf(stderr, "cdrecon: evidence: %s %s: refund %s yuan; pack in %s\n", mk,
                    month_arg, m1, out_dir);
        } else {
            fprintf(stderr, "cdrecon: evidence: %s %s: no overcharge; pack in %s\n", mk,
                    month_arg, out_dir);
        }
    }
    if (pdf_failed)
        rc = cli_fail(CDR_E_IO, "the pack is complete except the PDF");

out:
    if (tmpdir[0])
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    cdr_evidence_free(ev);
    if (have_stmt)
        cdr_stmt_free(&s);
    cdr_tariff_free(t);
    if (have_src) {
        for (int i = 0; i < nfiles; i++)
            free(files[i]);
        cli_state_close(&src);
    }
    cdr_profile_free(prof);
    free(source);
    free(inputs);
    free(command);
    free(chromium);
    free(files);
    return rc;
}

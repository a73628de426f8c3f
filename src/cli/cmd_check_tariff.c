/* cdrecon check-tariff DIR — validate a tariff directory and summarise it. */
#include <stdio.h>
#include <string.h>

#include "cdrecon/tariff.h"
#include "cli.h"
#include "opts.h"

static const cli_opt *const check_tariff_tables[] = {NULL};
static const cli_spec check_tariff_spec = {
    "check-tariff",
    "cdrecon check-tariff DIR",
    "Loads and validates the tariff directory DIR (plans.csv, bands.csv, rates.csv,\n"
    "bundles.csv, discounts.csv, free_numbers.csv, subscribers.csv,\n"
    "subscriptions.csv, refunds.csv; see docs/tariff.md) and prints a summary.\n",
    check_tariff_tables,
    "A refused tariff prints \"FILE:LINE: reason\" and exits 5 (CDR_E_TARIFF).\n",
    CLI_ARGS_DASH_OPT,
};

static void print_day(const cdr_tariff *t, const char *label, cdr_time day)
{
    char a[24], b[24];
    printf("  %-8s", label);
    cdr_time at = day, end = day + 86400;
    while (at < end) {
        cdr_time nx = cdr_tariff_band_change(t, at);
        if (nx > end)
            nx = end;
        int32_t band = cdr_tariff_band_at(t, at);
        cdr_time_format(at, a);
        cdr_time_format(nx, b);
        char e[4 * 256 + 1];
        printf(" %.5s-%.5s %s", a + 11, nx == end ? "24:00" : b + 11,
               band >= 0 ? cli_esc(t->band_names[band], e, sizeof e) : "?");
        at = nx;
    }
    printf("\n");
}

int cmd_check_tariff(int argc, char **argv)
{
    const char *dir = NULL;
    cli_args args;
    cli_args_init(&args, &check_tariff_spec, argc, argv);
    for (int id; (id = cli_args_next(&args)) != CLI_ARG_END;) {
        if (id == CLI_ARG_HELP)
            return CDR_OK;
        if (id == CLI_ARG_ERR)
            return CDR_E_USAGE;
        if (dir) {
            cli_err("one tariff directory expected");
            return CDR_E_USAGE;
        }
        dir = args.val;
    }
    if (!dir) {
        cli_help(&check_tariff_spec, stderr);
        return CDR_E_USAGE;
    }

    char err[512];
    cdr_tariff *t = NULL;
    cdr_err e = cdr_tariff_load(dir, &t, err, sizeof err);
    if (e != CDR_OK) {
        cli_err("%s", err);
        return e;
    }

    char esc[4 * 1024 + 1];
    printf("tariff %s: ok%s\n", cli_esc(dir, esc, sizeof esc),
           t->n_warnings ? " (with warnings below)" : "");
    for (size_t i = 0; i < t->n_warnings; i++)
        printf("warning: %s\n", cli_esc(t->warnings[i], esc, sizeof esc));
    printf("files:\n");
    for (int i = 0; i < CDR_T__COUNT; i++) {
        const cdr_tariff_file *f = &t->files[i];
        if (!f->present) {
            printf("  %-18s absent\n", f->name);
            continue;
        }
        char hex[65];
        for (int k = 0; k < 32; k++)
            snprintf(hex + 2 * k, 3, "%02x", f->sha256[k]);
        printf("  %-18s %8llu rows %10llu bytes  sha256 %s\n", f->name,
               (unsigned long long)f->rows, (unsigned long long)f->size, hex);
    }

    printf("plans: %zu\n", t->n_plans);
    for (size_t p = 0; p < t->n_plans; p++) {
        const cdr_plan *pl = &t->plans[p];
        char fee[32], rnd[32];
        cdr_money_format(pl->monthly_fee, 2, fee);
        cdr_money_format(pl->rounding, 2, rnd);
        printf("  %s: monthly_fee %s, rounding %s, sms %d/%d chars, band_rule %s\n",
               cli_esc(pl->name, esc, sizeof esc),
               fee, rnd, pl->sms_single_chars, pl->sms_part_chars,
               pl->band_rule == CDR_BAND_SPLIT ? "split" : "start");
        for (size_t b = 0; b < t->n_bundles; b++) {
            const cdr_bundle *bu = &t->bundles[b];
            if ((size_t)bu->plan != p)
                continue;
            static const char *const un[] = {"min", "seg", "MB"};
            printf("    bundle %s: %lld %s\n", cli_esc(t->pool_names[bu->pool], esc, sizeof esc),
                   (long long)bu->allowance, un[bu->unit]);
        }
        for (size_t d = 0; d < t->n_discounts; d++) {
            const cdr_discount *di = &t->discounts[d];
            if ((size_t)di->plan != p)
                continue;
            char pc[32];
            cdr_money_format(di->percent_micro, 0, pc);
            printf("    discount %s: %s%%\n", cdr_service_name(di->service), pc);
        }
        size_t nr = 0;
        for (size_t r = 0; r < t->n_rates; r++)
            nr += (size_t)t->rates[r].plan == p;
        printf("    rates: %zu\n", nr);
    }
    if (t->n_bands) {
        printf("bands: %zu names, %zu rows\n", t->n_band_names, t->n_bands);
        print_day(t, "weekday", 4 * 86400); /* 1970-01-05, a Monday */
        print_day(t, "weekend", 9 * 86400); /* 1970-01-10, a Saturday */
    } else {
        printf("bands: none (every rate uses band *)\n");
    }
    size_t nums = 0;
    for (size_t i = 0; i < t->n_subscribers; i++)
        nums += i == 0 || strcmp(t->subscribers[i].msisdn, t->subscribers[i - 1].msisdn) != 0;
    printf("rates: %zu\n", t->n_rates);
    printf("free numbers: %zu\n", t->n_free_numbers);
    printf("subscribers: %zu plan periods, %zu numbers\n", t->n_subscribers, nums);
    printf("subscriptions: %zu\n", t->n_subscriptions);
    printf("refunds: %zu\n", t->n_refunds);
    cdr_tariff_free(t);
    return CDR_OK;
}

/*
 * Fuzz target: the tariff directory loader and validator. The input is the
 * nine tables one after the other, separated by lines "@@" (an empty part
 * means the file is absent; plans.csv first, as in cdr_table). A loaded
 * tariff must answer look-ups without crashing, and rate the largest usage
 * the reader accepts with every rate row (start rule, discount applied)
 * within CDR_MONEY_MAX (the loader's limits, docs/tariff.md "Limits"); a
 * refused one must say "FILE:LINE: reason".
 */
#include <sys/stat.h>

#include "fuzz_util.h"

#include "cdrecon/rate.h"
#include "cdrecon/tariff.h"

static const char *names[CDR_T__COUNT] = {
    "plans.csv", "bands.csv", "rates.csv", "bundles.csv", "discounts.csv",
    "free_numbers.csv", "subscribers.csv", "subscriptions.csv", "refunds.csv"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 18))
        return 0;
    char dir[256], path[512];
    fz_path(dir, sizeof dir, "tariff");
    mkdir(dir, 0700);

    size_t pos = 0;
    for (int t = 0; t < CDR_T__COUNT; t++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[t]);
        unlink(path);
        size_t end = pos;
        while (end < size && !(end + 3 <= size && memcmp(data + end, "@@\n", 3) == 0 &&
                               (end == 0 || data[end - 1] == '\n')))
            end++;
        if (end > pos)
            fz_write(path, data + pos, end - pos);
        pos = end < size ? end + 3 : size;
    }

    cdr_tariff *tf = NULL;
    char err[512];
    err[0] = '\0';
    cdr_err e = cdr_tariff_load(dir, &tf, err, sizeof err);
    if (e != CDR_OK) {
        FZ_CHECK(tf == NULL);
        FZ_CHECK(err[0] != '\0');
    } else {
        FZ_CHECK(tf != NULL);
        static const char *peers[] = {"", "10086", "13800000000", "120", "8613912345678"};
        cdr_time at = 1790812800; /* 2026-10-01 */
        for (int k = 0; k < 48; k++) {
            cdr_time when = at + (cdr_time)k * 1800 * 7;
            int32_t band = cdr_tariff_band_at(tf, when);
            FZ_CHECK(band >= -1 && (band < 0 || (size_t)band < tf->n_band_names));
            FZ_CHECK(cdr_tariff_band_change(tf, when) > when);
            for (size_t p = 0; p < tf->n_plans && p < 4; p++)
                for (int s = 0; s < CDR_SVC__COUNT; s++) {
                    const char *peer = peers[k % 5];
                    const cdr_rate *r = cdr_tariff_find_rate(tf, (int32_t)p, (cdr_service)s,
                                                             (cdr_direction)(k & 1), peer,
                                                             strlen(peer), band);
                    FZ_CHECK(!r || (r->plan == (int32_t)p && r->service == (cdr_service)s));
                }
        }
        for (size_t i = 0; i < tf->n_rates && i < 64; i++) {
            const cdr_rate *r = &tf->rates[i];
            const cdr_plan *pl = &tf->plans[r->plan];
            cdr_rate_in in;
            cdr_rate_out o;
            cdr_rate_in_init(&in);
            in.tariff = tf;
            in.plan = r->plan;
            in.service = r->service;
            in.direction = r->direction;
            in.peer = (cdr_str){r->prefix, strlen(r->prefix)};
            in.start = at;
            in.usage = r->service == CDR_SVC_VOICE  ? CDR_DURATION_MAX
                       : r->service == CDR_SVC_DATA ? CDR_BYTES_MAX
                       : r->service == CDR_SVC_SMS
                           ? cdr_sms_segments(CDR_SMS_CHARS_MAX, pl->sms_single_chars,
                                              pl->sms_part_chars)
                           : 1;
            in.rate_hint = r;
            in.band_hint = r->band;
            in.force_start_rule = 1;
            in.no_bundle = 1;
            FZ_CHECK(cdr_rate_usage(&in, &o) == CDR_OK);
            FZ_CHECK(!o.unrated && o.charge >= 0 && o.charge <= CDR_MONEY_MAX);
        }
        for (size_t i = 0; i < tf->n_subscribers && i < 16; i++) {
            const cdr_subscriber *sb = &tf->subscribers[i];
            const cdr_subscriber *f = cdr_tariff_subscriber(tf, sb->msisdn, strlen(sb->msisdn),
                                                            sb->valid_from);
            FZ_CHECK(f != NULL);
        }
        cdr_tariff_free(tf);
    }
    for (int t = 0; t < CDR_T__COUNT; t++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[t]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

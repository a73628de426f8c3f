/* cdrecon — the month report's figures: each one query over the tables and
 * views of the results database (docs/database.md), with ?1 the month
 * 'YYYY-MM' and ?2 the as-of day 'YYYY-MM-DD'. The page shows each query
 * as it ran (with the values in place of ?1/?2), so `sqlite3 -readonly DB`
 * gives the same rows. Amounts are integer micro-yuan in the queries
 * (columns *_micro) and yuan on the page. docs/report.md says what each
 * figure means. */
#include "report.h"

#define N(a) (sizeof(a) / sizeof *(a))

/* The runs ("nights") of the month: committed runs that list it in their
 * months, or wrote or replaced its findings, changed its candidates or
 * wrote its state segments. */
#define NIGHTS                                                                                \
    "nights AS (SELECT run_id FROM runs WHERE finished_at IS NOT NULL AND (\n"                \
    "    ';' || coalesce(months, '') || ';' LIKE '%;' || ?1 || ';%'\n"                       \
    "    OR run_id IN (SELECT run_id FROM findings WHERE month = ?1\n"                        \
    "      UNION SELECT superseded_by FROM findings WHERE month = ?1\n"                       \
    "      UNION SELECT run_id FROM changes WHERE month = ?1\n"                               \
    "      UNION SELECT run_id FROM state_files WHERE month = ?1)))"

/* A row that was current after run p (the previous run). */
#define ASOF "run_id <= p AND (superseded_by IS NULL OR superseded_by > p)"
#define NOW "superseded_by IS NULL"

/* Columns that several figures show. */
#define C_NIGHT {"night", "运行", "run", RP_COUNT}
#define C_DATE {"date", "日期 (UTC)", "date (UTC)", RP_TEXT}
#define C_KIND {"kind", "类型", "kind", RP_WORD}
#define C_FINDINGS {"findings", "记录数", "findings", RP_COUNT}
#define C_OVERCHARGE {"overcharge_micro", "多收 (元)", "overcharge (yuan)", RP_MONEY}
#define C_LEAKAGE {"leakage_micro", "少收 (元)", "leakage (yuan)", RP_MONEY}
#define C_REFUND {"refund_micro", "退费 (元)", "refund (yuan)", RP_MONEY}
#define C_CANDIDATES {"candidates", "候选数", "candidates", RP_COUNT}
#define C_POLICY {"policy", "处理方式", "policy", RP_WORD}
#define C_ROWS_READ {"rows_read", "读入行数", "rows read", RP_COUNT}
#define C_ROWS_REJECTED {"rows_rejected", "拒收行数", "rows rejected", RP_COUNT}

/* The overcharge and the leakage of a group of findings. */
#define SUM_OVERCHARGE "  sum(max(difference_micro, 0)) AS overcharge_micro,\n"
#define SUM_LEAKAGE "  sum(max(-difference_micro, 0)) AS leakage_micro\n"

static const char sql_totals[] =
    "WITH lp AS (SELECT coalesce((SELECT max(run_id) FROM runs WHERE finished_at IS NOT NULL), 0)"
    " AS l),\n"
    "lp2 AS (SELECT l, coalesce((SELECT max(run_id) FROM runs WHERE finished_at IS NOT NULL\n"
    "    AND run_id < l), 0) AS p, coalesce((SELECT kind FROM runs WHERE run_id = l), '') AS lk"
    " FROM lp),\n" NIGHTS ",\n"
    "f AS (SELECT count(CASE WHEN " NOW " THEN 1 END) AS n1,\n"
    "    count(CASE WHEN " ASOF " THEN 1 END) AS n0,\n"
    "    coalesce(sum(CASE WHEN " NOW " AND category = 'leakage' THEN -difference_micro END), 0)"
    " AS k1,\n"
    "    coalesce(sum(CASE WHEN " ASOF " AND category = 'leakage' THEN -difference_micro END), 0)"
    " AS k0\n"
    "  FROM findings, lp2 WHERE month = ?1),\n"
    "c AS (SELECT count(CASE WHEN " NOW " THEN 1 END) AS n1,\n"
    "    count(CASE WHEN " ASOF " THEN 1 END) AS n0,\n"
    "    coalesce(sum(CASE WHEN " NOW " THEN overcharge_micro END), 0) AS o1,\n"
    "    coalesce(sum(CASE WHEN " ASOF " THEN overcharge_micro END), 0) AS o0,\n"
    "    coalesce(sum(CASE WHEN " NOW " THEN refund_micro END), 0) AS r1,\n"
    "    coalesce(sum(CASE WHEN " ASOF " THEN refund_micro END), 0) AS r0\n"
    "  FROM candidates, lp2 WHERE month = ?1),\n"
    "u AS (SELECT count(CASE WHEN " NOW " THEN 1 END) AS n1,\n"
    "    count(CASE WHEN " ASOF " THEN 1 END) AS n0 FROM unrated, lp2 WHERE month = ?1),\n"
    "j AS (SELECT count(*) AS n1, count(CASE WHEN r.run_id <= p THEN 1 END) AS n0\n"
    "  FROM rejects r, lp2 WHERE r.run_id IN (SELECT run_id FROM nights)),\n"
    "s AS (SELECT coalesce(sum(records), 0) AS n1,\n"
    "    coalesce(sum(CASE WHEN run_id = l AND lk <> 'compact' THEN records END), 0) AS a\n"
    "  FROM state_files, lp2 WHERE month = ?1 AND kind = 'segment'),\n"
    "t(ord, metric, unit, now, previous) AS (\n"
    "            SELECT 1, 'records', 'count', n1, n1 - a FROM s\n"
    "  UNION ALL SELECT 2, 'findings', 'count', n1, n0 FROM f\n"
    "  UNION ALL SELECT 3, 'candidates', 'count', n1, n0 FROM c\n"
    "  UNION ALL SELECT 4, 'overcharge', 'micro', o1, o0 FROM c\n"
    "  UNION ALL SELECT 5, 'refund', 'micro', r1, r0 FROM c\n"
    "  UNION ALL SELECT 6, 'leakage', 'micro', k1, k0 FROM f\n"
    "  UNION ALL SELECT 7, 'rejects', 'count', n1, n0 FROM j\n"
    "  UNION ALL SELECT 8, 'unrated', 'count', n1, n0 FROM u)\n"
    "SELECT metric, unit, now, previous, now - previous AS change FROM t ORDER BY ord";
static const rp_col cols_totals[] = {
    {"metric", "指标", "figure", RP_WORD},
    {"unit", "单位", "unit", RP_WORD},
    {"now", "本次", "now", RP_BY_UNIT},
    {"previous", "上次运行后", "after the previous run", RP_BY_UNIT},
    {"change", "变化", "change", RP_BY_UNIT},
};

static const char sql_category[] =
    "SELECT category, count(*) AS findings,\n"
    SUM_OVERCHARGE
    "  2 * sum(max(difference_micro, 0)) AS refund_micro,\n"
    SUM_LEAKAGE
    "FROM current_findings WHERE month = ?1 AND category <> ''\n"
    "GROUP BY category\n"
    "ORDER BY category = 'leakage', refund_micro DESC, findings DESC, category";
static const rp_col cols_category[] = {
    {"category", "类别", "category", RP_CATEGORY},
    C_FINDINGS,
    C_OVERCHARGE,
    {"refund_micro", "退费 ×2 (元)", "refund x2 (yuan)", RP_MONEY},
    C_LEAKAGE,
};

static const char sql_nights[] =
    "WITH " NIGHTS ",\n"
    "ch AS (SELECT run_id, count(CASE WHEN status = 'new' THEN 1 END) AS proposed,\n"
    "    count(CASE WHEN status = 'increased' THEN 1 END) AS increased,\n"
    "    count(CASE WHEN status = 'decreased' THEN 1 END) AS decreased,\n"
    "    count(CASE WHEN status = 'withdrawn' THEN 1 END) AS withdrawn,\n"
    "    sum(delta_micro) AS delta\n"
    "  FROM changes WHERE month = ?1 GROUP BY run_id),\n"
    "fe AS (SELECT night, sum(d) AS d FROM (\n"
    "    SELECT run_id AS night, 1 AS d FROM findings WHERE month = ?1\n"
    "    UNION ALL SELECT superseded_by, -1 FROM findings\n"
    "      WHERE month = ?1 AND superseded_by IS NOT NULL) GROUP BY night)\n"
    "SELECT r.run_id AS night, substr(r.started_at, 1, 10) AS date, r.kind,\n"
    "  coalesce(ch.proposed, 0) AS proposed, coalesce(ch.increased, 0) AS increased,\n"
    "  coalesce(ch.decreased, 0) AS decreased, coalesce(ch.withdrawn, 0) AS withdrawn,\n"
    "  coalesce(ch.delta, 0) AS refund_delta_micro,\n"
    "  sum(coalesce(ch.delta, 0)) OVER w AS refund_to_date_micro,\n"
    "  sum(coalesce(fe.d, 0)) OVER w AS findings_to_date\n"
    "FROM runs r JOIN nights n ON n.run_id = r.run_id\n"
    "  LEFT JOIN ch ON ch.run_id = r.run_id LEFT JOIN fe ON fe.night = r.run_id\n"
    "WINDOW w AS (ORDER BY r.run_id) ORDER BY r.run_id";
static const rp_col cols_nights[] = {
    C_NIGHT,
    C_DATE,
    C_KIND,
    {"proposed", "新增候选", "proposed", RP_COUNT},
    {"increased", "金额增加", "increased", RP_COUNT},
    {"decreased", "金额减少", "decreased", RP_COUNT},
    {"withdrawn", "撤销", "withdrawn", RP_COUNT},
    {"refund_delta_micro", "退费变化 (元)", "refund change (yuan)", RP_MONEY},
    {"refund_to_date_micro", "累计退费 (元)", "refund to date (yuan)", RP_MONEY},
    {"findings_to_date", "累计问题记录", "findings to date", RP_COUNT},
};

static const rp_col cols_plans[] = {
    {"plan", "套餐", "plan", RP_TEXT},
    C_FINDINGS,
    C_OVERCHARGE,
    C_LEAKAGE,
};

static const rp_col cols_rates[] = {
    {"line", "rates.csv 行", "rates.csv line", RP_COUNT},
    {"plan", "套餐", "plan", RP_TEXT},
    {"service", "业务", "service", RP_TEXT},
    {"direction", "方向", "direction", RP_TEXT},
    {"prefix", "号码前缀", "prefix", RP_TEXT},
    {"band", "时段", "band", RP_TEXT},
    {"price", "单价 (元)", "price (yuan)", RP_PRICE},
    C_FINDINGS,
    C_OVERCHARGE,
    C_LEAKAGE,
};

static const char sql_services[] =
    "SELECT service, count(*) AS findings,\n"
    SUM_OVERCHARGE
    SUM_LEAKAGE
    "FROM current_findings WHERE month = ?1\n"
    "GROUP BY service ORDER BY overcharge_micro DESC, service";
static const rp_col cols_services[] = {
    {"service", "业务", "service", RP_WORD},
    C_FINDINGS,
    C_OVERCHARGE,
    C_LEAKAGE,
};

#define H(n) "  count(CASE WHEN w.hour = " #n " THEN 1 END) AS h" #n
#define H4(a, b, c, d) H(a) ",\n" H(b) ",\n" H(c) ",\n" H(d)
static const char sql_heat[] =
    "WITH d(dow, ord) AS (VALUES ('1', 1), ('2', 2), ('3', 3), ('4', 4), ('5', 5),\n"
    "    ('6', 6), ('0', 7)),\n"
    "w AS (SELECT strftime('%w', start_time) AS dow,\n"
    "    CAST(substr(start_time, 12, 2) AS INTEGER) AS hour\n"
    "  FROM current_findings WHERE month = ?1 AND category = 'wrong_band')\n"
    "SELECT d.dow AS weekday, count(w.hour) AS total,\n" H4(0, 1, 2, 3) ",\n" H4(4, 5, 6, 7)
    ",\n" H4(8, 9, 10, 11) ",\n" H4(12, 13, 14, 15) ",\n" H4(16, 17, 18, 19) ",\n"
    H4(20, 21, 22, 23) "\n"
    "FROM d LEFT JOIN w ON w.dow = d.dow GROUP BY d.dow ORDER BY d.ord";
#define HC(n) {"h" #n, #n, "", RP_COUNT}
static const rp_col cols_heat[] = {
    {"weekday", "星期", "day", RP_WEEKDAY}, {"total", "合计", "total", RP_COUNT},
    HC(0), HC(1), HC(2), HC(3), HC(4), HC(5), HC(6), HC(7), HC(8), HC(9), HC(10), HC(11),
    HC(12), HC(13), HC(14), HC(15), HC(16), HC(17), HC(18), HC(19), HC(20), HC(21), HC(22),
    HC(23),
};

static const char sql_tiers[] =
    "SELECT tier, policy, count(*) AS candidates,\n"
    "  sum(overcharge_micro) AS overcharge_micro, sum(refund_micro) AS refund_micro,\n"
    "  sum(special) AS special\n"
    "FROM current_candidates WHERE month = ?1\n"
    "GROUP BY tier, policy ORDER BY tier, policy";
static const rp_col cols_tiers[] = {
    {"tier", "审批层级", "approval tier", RP_COUNT},
    C_POLICY,
    C_CANDIDATES,
    C_OVERCHARGE,
    C_REFUND,
    {"special", "特殊客户", "special customers", RP_COUNT},
};

static const char sql_deadlines[] =
    "WITH d AS (SELECT c.policy, c.refund_micro,\n"
    "    CASE WHEN c.policy = 'refund_first' THEN date(r.finished_at, '+2 days')\n"
    "    ELSE date(r.finished_at, '+' || CASE strftime('%w', r.finished_at)\n"
    "      WHEN '3' THEN 5 WHEN '4' THEN 5 WHEN '5' THEN 5 WHEN '6' THEN 4 ELSE 3 END\n"
    "      || ' days') END AS due\n"
    "  FROM current_candidates c JOIN runs r ON r.run_id = c.run_id WHERE c.month = ?1)\n"
    "SELECT policy, CASE WHEN due < ?2 THEN 'passed' WHEN due = ?2 THEN 'today'\n"
    "    ELSE 'open' END AS state,\n"
    "  count(*) AS candidates, sum(refund_micro) AS refund_micro,\n"
    "  min(due) AS first_due, max(due) AS last_due\n"
    "FROM d GROUP BY policy, state ORDER BY policy, state";
static const rp_col cols_deadlines[] = {
    C_POLICY,
    {"state", "时限", "deadline", RP_WORD},
    C_CANDIDATES,
    C_REFUND,
    {"first_due", "最早到期", "first due", RP_TEXT},
    {"last_due", "最晚到期", "last due", RP_TEXT},
};

static const char sql_special[] =
    "SELECT count(*) AS candidates, coalesce(sum(refund_micro), 0) AS refund_micro,\n"
    "  count(CASE WHEN policy = 'verify_first' THEN 1 END) AS verify_first,\n"
    "  coalesce(max(refund_micro), 0) AS largest_refund_micro\n"
    "FROM current_candidates WHERE month = ?1 AND special = 1";
static const rp_col cols_special[] = {
    {"candidates", "特殊客户数", "special customers", RP_COUNT},
    C_REFUND,
    {"verify_first", "先查证后退费", "verify first", RP_COUNT},
    {"largest_refund_micro", "最大退费 (元)", "largest refund (yuan)", RP_MONEY},
};

static const char sql_top[] =
    "SELECT msisdn, records, overcharge_micro, refund_micro, categories, tier, policy,\n"
    "  special, flags\n"
    "FROM current_candidates WHERE month = ?1\n"
    "ORDER BY refund_micro DESC, msisdn LIMIT 20";
static const rp_col cols_top[] = {
    {"msisdn", "号码 (已遮蔽)", "number (masked)", RP_MSISDN},
    {"records", "记录数", "records", RP_COUNT},
    C_OVERCHARGE,
    C_REFUND,
    {"categories", "类别", "categories", RP_TEXT},
    {"tier", "层级", "tier", RP_COUNT},
    C_POLICY,
    {"special", "特殊", "special", RP_COUNT},
    {"flags", "标记", "flags", RP_TEXT},
};

/* The reject figures over the runs that `runs` picks: the month's nights
 * here, the runs given as a JSON array (rp_sql_run_reject_*) below. */
#define REJECT_REASONS(runs)                                                                  \
    "SELECT rtrim(CASE WHEN instr(reason, '''') > 0\n"                                       \
    "    THEN substr(reason, 1, instr(reason, '''') - 1) ELSE reason END, ' :') AS reason_kind,\n" \
    "  count(*) AS rejects, count(DISTINCT file_id) AS files\n"                               \
    "FROM rejects WHERE " runs "\n"                                                          \
    "GROUP BY reason_kind ORDER BY rejects DESC, reason_kind LIMIT 20"
#define REJECT_FILES(runs)                                                                    \
    "SELECT f.name AS file, f.run_id AS night, f.state, f.rows_read, f.rows_rejected,\n"      \
    "  coalesce(f.message, '') AS message\n"                                                  \
    "FROM files f WHERE f." runs "\n"                                                        \
    "  AND (f.rows_rejected > 0 OR f.state <> 'ingested')\n"                                  \
    "ORDER BY f.rows_rejected DESC, f.file_id LIMIT 20"
#define IN_NIGHTS "run_id IN (SELECT run_id FROM nights)"

static const char sql_reject_reasons[] = "WITH " NIGHTS "\n" REJECT_REASONS(IN_NIGHTS);
static const rp_col cols_reject_reasons[] = {
    {"reason_kind", "原因", "reason", RP_TEXT},
    {"rejects", "拒收行数", "rejected rows", RP_COUNT},
    {"files", "文件数", "files", RP_COUNT},
};

static const char sql_reject_files[] = "WITH " NIGHTS "\n" REJECT_FILES(IN_NIGHTS);
static const rp_col cols_reject_files[] = {
    {"file", "文件", "file", RP_TEXT},
    C_NIGHT,
    {"state", "状态", "state", RP_WORD},
    C_ROWS_READ,
    C_ROWS_REJECTED,
    {"message", "说明", "message", RP_TEXT},
};

static const char sql_files[] =
    "WITH " NIGHTS "\n"
    "SELECT r.run_id AS night, substr(r.started_at, 1, 10) AS date, r.kind,\n"
    "  count(f.file_id) AS files,\n"
    "  count(CASE WHEN f.state = 'ingested' THEN 1 END) AS ingested,\n"
    "  count(CASE WHEN f.state = 'failed' THEN 1 END) AS failed,\n"
    "  count(CASE WHEN f.state = 'refused' THEN 1 END) AS refused,\n"
    "  coalesce(sum(f.rows_read), 0) AS rows_read,\n"
    "  coalesce(sum(f.rows_rejected), 0) AS rows_rejected,\n"
    "  r.submonths, r.submonths_full\n"
    "FROM runs r JOIN nights n ON n.run_id = r.run_id LEFT JOIN files f ON f.run_id = r.run_id\n"
    "GROUP BY r.run_id ORDER BY r.run_id";
static const rp_col cols_files[] = {
    C_NIGHT,
    C_DATE,
    C_KIND,
    {"files", "文件", "files", RP_COUNT},
    {"ingested", "已入库", "ingested", RP_COUNT},
    {"failed", "失败", "failed", RP_COUNT},
    {"refused", "拒收 (重复投递)", "refused (re-delivery)", RP_COUNT},
    C_ROWS_READ,
    C_ROWS_REJECTED,
    {"submonths", "用户月", "subscriber-months", RP_COUNT},
    {"submonths_full", "整月重算", "re-rated whole", RP_COUNT},
};

static const char sql_late[] =
    "WITH a AS (SELECT fl.run_id AS night, substr(f.start_time, 1, 10) AS day\n"
    "  FROM current_findings f JOIN files fl ON fl.file_id = f.file_id WHERE f.month = ?1),\n"
    "per AS (SELECT night, count(*) AS arrived, max(day) AS last_day FROM a GROUP BY night),\n"
    "w AS (SELECT night, arrived, max(last_day) OVER (ORDER BY night\n"
    "    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS watermark FROM per)\n"
    "SELECT w.night, w.arrived AS findings, w.watermark,\n"
    "  count(CASE WHEN a.day < w.watermark THEN 1 END) AS late\n"
    "FROM w JOIN a ON a.night = w.night GROUP BY w.night ORDER BY w.night";
static const rp_col cols_late[] = {
    C_NIGHT,
    {"findings", "到达的问题记录", "findings arrived", RP_COUNT},
    {"watermark", "此前已到的最晚日期", "latest day seen before", RP_TEXT},
    {"late", "迟到", "late", RP_COUNT},
};

#define FIG(id, zh, en, sql, cols, unit) {id, zh, en, sql, cols, N(cols), unit}
const rp_figure rp_figures[RP_FIG__COUNT] = {
    [RP_FIG_TOTALS] = FIG("totals", "本月合计", "Month totals", sql_totals, cols_totals, 1),
    [RP_FIG_CATEGORY] = FIG("category", "按问题类别", "By category", sql_category,
                            cols_category, -1),
    [RP_FIG_NIGHTS] = FIG("nights", "逐夜变化", "Night by night", sql_nights, cols_nights, -1),
    [RP_FIG_PLANS] = FIG("plans", "问题最多的套餐", "Top plans", NULL, cols_plans, -1),
    [RP_FIG_RATES] = FIG("rates", "涉及的资费行", "Tariff rate rows", NULL, cols_rates, -1),
    [RP_FIG_SERVICES] = FIG("services", "按业务", "By service", sql_services, cols_services,
                            -1),
    [RP_FIG_HEAT] = FIG("heat", "跨时段计费错误的时间分布",
                        "When wrong_band findings happen (day of week x hour)", sql_heat,
                        cols_heat, -1),
    [RP_FIG_TIERS] = FIG("tiers", "按审批层级与处理方式", "Candidates by approval tier and policy",
                         sql_tiers, cols_tiers, -1),
    [RP_FIG_DEADLINES] = FIG("deadlines", "处理时限", "Deadlines", sql_deadlines,
                             cols_deadlines, -1),
    [RP_FIG_SPECIAL] = FIG("special", "特殊客户", "Special customers", sql_special, cols_special,
                           -1),
    [RP_FIG_TOP] = FIG("top", "退费最多的 20 个候选", "The 20 largest candidates", sql_top,
                       cols_top, -1),
    [RP_FIG_REJECT_REASONS] = FIG("reject-reasons", "拒收原因", "Rejects by reason",
                                  sql_reject_reasons, cols_reject_reasons, -1),
    [RP_FIG_REJECT_FILES] = FIG("reject-files", "有拒收的文件", "Rejects by file",
                                sql_reject_files, cols_reject_files, -1),
    [RP_FIG_FILES] = FIG("files", "每夜入库文件", "Files ingested per night", sql_files,
                         cols_files, -1),
    [RP_FIG_LATE] = FIG("late", "迟到记录", "Late records", sql_late, cols_late, -1),
};

/* (every month ingested has state segments) */
const char rp_sql_latest_month[] = "SELECT max(month) FROM state_files";
const char rp_sql_month_known[] =
    "SELECT 1 FROM state_files WHERE month = ?1\n"
    "UNION ALL SELECT 1 FROM findings WHERE month = ?1 LIMIT 1";
const char rp_sql_last_run[] =
    "SELECT run_id, kind, substr(finished_at, 1, 10) FROM runs WHERE finished_at IS NOT NULL\n"
    "ORDER BY run_id DESC LIMIT 1";
/* The tariff of the run that wrote the month's live checkpoint: the last
 * run that rated it. */
const char rp_sql_month_tariff[] =
    "SELECT t.dir, t.sha256, r.run_id FROM state_files s JOIN runs r ON r.run_id = s.run_id\n"
    "  JOIN tariffs t ON t.tariff_id = r.tariff_id\n"
    "WHERE s.month = ?1 AND s.kind = 'checkpoint' ORDER BY s.run_id DESC LIMIT 1";

/* The reject figures as run: the month's runs given as ?3 (a JSON array),
 * the rest as shown. */
#define IN_RUNS "run_id IN (SELECT value FROM json_each(?3))"
const char rp_sql_run_reject_reasons[] = REJECT_REASONS(IN_RUNS);
const char rp_sql_run_reject_files[] = REJECT_FILES(IN_RUNS);

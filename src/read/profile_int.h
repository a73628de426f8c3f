/* cdrecon — input profiles: the loaded profile as the reader sees it.
 * Internal header (src/profile.c builds it, src/reader.c plans from it). */
#ifndef CDRECON_PROFILE_INT_H
#define CDRECON_PROFILE_INT_H

#include "cdrecon/profile.h"

#define PF_MAXREF 8    /* columns of one sum or first-of list */
#define PF_MAXTYPE 64  /* `type` lines */
#define PF_TYPE_HASH 256 /* slots of the record type's hash table (4 x PF_MAXTYPE) */
#define PF_MAXSKIP 8   /* `skip_prefix` lines */
#define PF_MAXTOPS 40  /* steps of a time pattern */
#define PF_MAXSIZE (64u << 10) /* largest profile file */

/* One more source beside the public fields: the column with each row's
 * UTC offset (start_time.utc_offset). */
enum { PF_UTC = CDR_PF__COUNT, PF__N };

/* How a field is built. */
enum pf_kind {
    PK_NONE,  /* not mapped: empty */
    PK_COL,   /* one column */
    PK_CONST, /* a constant */
    PK_SUM,   /* whole numbers (or amounts) of several columns added */
    PK_PAIR,  /* a date column and a time column, joined by one space */
    PK_FIRST  /* the first non-empty of several columns */
};

typedef struct pf_ref {
    char *name;   /* header name (NUL-terminated), or NULL: by index */
    size_t name_n;
    int index;    /* 0-based, when by index */
    int optional; /* NAME?: a header without it reads as empty */
} pf_ref;

typedef struct pf_field {
    int kind;
    int line; /* the profile line that declared it; 0 = not declared */
    int nref;
    pf_ref ref[PF_MAXREF];
    char *konst;
    size_t konst_n;
    int opt_line; /* line of its unit / format option, 0 if none */
} pf_field;

/* Time formats of start_time. */
enum { PT_CONTRACT, PT_PATTERN, PT_EPOCH, PT_EPOCH_MS };
/* Steps of a pattern. */
enum { TO_LIT, TO_Y4, TO_Y2, TO_MON, TO_DAY, TO_H, TO_MI, TO_S, TO_FRAC, TO_TZ };
/* Slots of the 2-digit numbers of a fixed-width pattern. */
enum { TF_CENTURY, TF_YEAR, TF_MON, TF_DAY, TF_H, TF_MI, TF_S, TF_NONE };
typedef struct pf_top {
    unsigned char op;
    char c; /* TO_LIT */
} pf_top;

typedef struct pf_type {
    char *key;
    size_t n;
    int skip;
    int service;   /* cdr_service */
    int direction; /* cdr_direction, or -1: from the direction field */
    int line;
} pf_type;

struct cdr_profile {
    char *path;
    uint8_t sha[32];
    uint64_t size;

    /* layout */
    char sep;
    char quote; /* '"' or 0 (none) */
    int header; /* 1: the first row names the columns */
    int columns; /* header = no: the field count of every row */
    int n_skip;
    char *skip[PF_MAXSKIP];
    size_t skip_n[PF_MAXSKIP];

    pf_field f[PF__N];

    /* start_time */
    int tkind;
    pf_top tops[PF_MAXTOPS];
    int ntops;
    char tfmt[80]; /* the format as written, for messages */
    int t_tz;      /* the pattern has %z */
    int t_y2;      /* the pattern has %y (2000 + yy) */
    /* a pattern of fixed-width digits and literals (and maybe a final %z)
     * is read by position, without walking its steps */
    int tfix, tfix_len, tfix_tz;
    int tf_n, tl_n;
    struct { unsigned char op, pos; } tf[8];   /* the numbers: slot (TF_*), position */
    /* ... and, for 8 to 24 bytes, as words: word k holds bytes [8k, 8k + 8)
     * but the last, which holds the final 8 bytes; digit and literal masks,
     * the literals' bytes, and each number's word and shifts */
    int tdig; /* 12 (%y%m%d%H%M%S) or 14 (%Y%m%d%H%M%S), maybe then %z: two
                 words of digits, each number at a fixed byte; 0: not so */
    int tw_n; /* words used, 0: not read as words */
    uint64_t tw_dig[3], tw_lit[3], tw_val[3];
    unsigned tw_off[3]; /* where each word is loaded from (an unused one: 0, no masks) */
    /* all 8 entries are read (unused ones write slot TF_NONE): no loop
     * whose length depends on the pattern */
    struct { unsigned char slot, w, sh; } twf[8]; /* sh: the tens digit's bit shift */
    struct { unsigned char pos; char c; } tl[PF_MAXTOPS]; /* the literals */
    int has_local;
    int32_t local_off; /* seconds east of UTC of the operator's clock */

    /* units */
    int dur_ms;   /* duration_s in milliseconds */
    int bytes_kb; /* bytes in KB of 1024 */
    int money_shift; /* billed: 0 yuan, 1 jiao, 2 fen */

    /* record types */
    int ntypes;
    pf_type types[PF_MAXTYPE];
    int type_by_word; /* every key is 1..8 bytes: looked up as words in type_hash */
    uint64_t type_word[PF_MAXTYPE]; /* key bytes | length << 56 */
    signed char type_hash[PF_TYPE_HASH]; /* index into types, -1 empty; linear probing */

    /* numbers */
    char cc[8]; /* country code digits ("86" by default) */
    size_t cc_n;
    char trunk[8]; /* trunk prefix ("" = none) */
    size_t trunk_n;
    char imsi_pfx[8]; /* an msisdn of 15 digits starting so is an IMSI */
    size_t imsi_pfx_n;
    int num_plain; /* no trunk prefix and country code 86: the contract's rule alone */
};

/* Conversions shared by the loader (constants are checked at load) and the
 * reader. Each returns 0, -1 (not in the format) or -2 (out of range). */
/* start_time: v is the value (a pair already joined); tz the row's UTC
 * offset column value (when the profile has one, else ignored). -3: tz bad. */
int cdr_pf_time(const cdr_profile *p, const char *v, size_t n, const char *tz, size_t tzn,
                cdr_time *out);
/* billed in the profile's unit. -2 also for more precision than a micro-yuan. */
int cdr_pf_money(const cdr_profile *p, const char *v, size_t n, cdr_money *out);
/* "+08:00", "+0800", "+08", "Z": seconds east of UTC. */
int cdr_pf_utc_offset(const char *v, size_t n, int32_t *out);
/* A phone number after the profile's trunk prefix and country code rules,
 * then the contract's normalisation. 0 ok, -1 not a number. */
int cdr_pf_number(const cdr_profile *p, const char *v, size_t n, cdr_str *out);
/* The type line for a value, or NULL. */
const pf_type *cdr_pf_type(const cdr_profile *p, const char *v, size_t n);

#endif

/*
 * storecat — print a cdrecon store (docs/investigate.md, "Layout") in a
 * canonical form that two stores of the same content share even when their
 * compressed bytes differ: the header as it is, each block inflated, each
 * index entry with its block's file offset replaced by the block's number,
 * the footer without its creation time and CRC.
 *
 * Why: ISA-L's level-1 deflate sometimes encodes the same block differently
 * in two runs (a valid stream either way; seen on this machine with a
 * standalone program, one block in about 10^4); the store's bytes, and its
 * index's offsets after such a block, then differ while every statement is
 * the same. tests/cli/t_store_threads.sh compares stores through this.
 *
 * Usage: storecat STORE > canonical; exit 0, or 1 with a message on a store
 * it cannot walk (it checks lengths and inflates; `investigate --verify`
 * checks the CRCs).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int die(const char *what)
{
    fprintf(stderr, "storecat: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return die("usage: storecat STORE");
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return die("cannot open the store");
    if (fseek(f, 0, SEEK_END) != 0)
        return die("cannot seek");
    long sz = ftell(f);
    if (sz < 64 + 8 || fseek(f, 0, SEEK_SET) != 0)
        return die("too short");
    unsigned char *d = malloc((size_t)sz);
    if (!d || fread(d, 1, (size_t)sz, f) != (size_t)sz)
        return die("cannot read");
    fclose(f);
    const unsigned char *foot = d + sz - 64;
    if (memcmp(d, "CDRSTOR1", 8) != 0 || memcmp(foot, "CDRSIDX1", 8) != 0)
        return die("not a store");
    uint32_t esize = get32(foot + 12);
    uint64_t ix_off = get64(foot + 16), n_ix = get64(foot + 24);
    if (esize != 64 || ix_off > (uint64_t)sz - 64 || n_ix != ((uint64_t)sz - 64 - ix_off) / 64)
        return die("bad footer");

    /* the header: everything before the first block */
    size_t pos = 8;
    while (pos + 4 <= ix_off && get32(d + pos) != 0x424b4443u) /* "CDKB" */
        pos++;
    fwrite(d, 1, pos, stdout);
    /* the blocks, inflated; their file offsets, for the index */
    size_t nb = 0, cap = 1024;
    uint64_t *offs = malloc(cap * sizeof *offs);
    unsigned char *u = malloc(1 << 20);
    if (!offs || !u)
        return die("out of memory");
    while (pos < ix_off) {
        if (pos + 20 > ix_off || get32(d + pos) != 0x424b4443u)
            return die("bad block header");
        uint32_t clen = get32(d + pos + 4), ulen = get32(d + pos + 8);
        if (clen > ix_off - pos - 20 || ulen > (1u << 20))
            return die("bad block length");
        uLongf got = 1 << 20;
        if (uncompress(u, &got, d + pos + 20, clen) != Z_OK || got != ulen)
            return die("a block does not inflate to its length");
        if (nb == cap && !(offs = realloc(offs, (cap *= 2) * sizeof *offs)))
            return die("out of memory");
        offs[nb++] = pos;
        printf("B %u\n", ulen);
        fwrite(u, 1, ulen, stdout);
        pos += 20 + clen;
    }
    /* the index, with block numbers for offsets */
    for (uint64_t i = 0; i < n_ix; i++) {
        const unsigned char *e = d + ix_off + i * 64;
        uint64_t off = get64(e + 40);
        size_t lo = 0, hi = nb; /* offs ascends */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (offs[mid] < off)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t b = lo;
        if (b == nb || offs[b] != off)
            return die("an index entry names no block");
        printf("I %.32s %u %u %zu %u %llu\n", (const char *)e, get32(e + 32), get32(e + 36), b,
               get32(e + 48), (unsigned long long)get64(e + 52));
    }
    /* the footer: version, entry size, entries, records, blocks */
    printf("F %u %u %llu %llu %llu\n", get32(foot + 8), esize, (unsigned long long)n_ix,
           (unsigned long long)get64(foot + 32), (unsigned long long)get64(foot + 40));
    free(offs);
    free(u);
    free(d);
    return 0;
}

/* Issue 15: is a packaged SHA-256 as fast as the one we wrote? Hashes each
 * FILE's bytes (read into memory first, so only hashing is timed) with
 * cdrecon's cdr_sha256 (src/common/sha256.h: nettle's, since issue 15), nettle's
 * sha256 called directly and OpenSSL's EVP SHA-256, REPS times each, the
 * order rotated every repetition; prints CPU seconds and MB/s of each and
 * checks the digests agree. With the source of the implementation we had
 * (git show d7efdc3:src/common/sha256.c) in place of src/common/sha256.c, the first line
 * measures that one. Run by `make bench` (tools/bench.sh). */
#include <nettle/sha2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sha256.h"

static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* in 64 KiB pieces, as cdrecon's reader feeds it */
static void hash(int which, const unsigned char *b, size_t n, uint8_t out[32])
{
    size_t o;
    if (which == 0) {
        cdr_sha256 c;
        cdr_sha256_init(&c);
        for (o = 0; o < n; o += 65536)
            cdr_sha256_update(&c, b + o, n - o < 65536 ? n - o : 65536);
        cdr_sha256_final(&c, out);
    } else if (which == 1) {
        struct sha256_ctx nc;
        sha256_init(&nc);
        for (o = 0; o < n; o += 65536)
            sha256_update(&nc, n - o < 65536 ? n - o : 65536, b + o);
        sha256_digest(&nc, SHA256_DIGEST_SIZE, out);
    } else {
        unsigned dl = 0;
        EVP_MD_CTX *e = EVP_MD_CTX_new();
        EVP_DigestInit_ex(e, EVP_sha256(), NULL);
        for (o = 0; o < n; o += 65536)
            EVP_DigestUpdate(e, b + o, n - o < 65536 ? n - o : 65536);
        EVP_DigestFinal_ex(e, out, &dl);
        EVP_MD_CTX_free(e);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-sha256 REPS FILE...\n");
        return 2;
    }
    int reps = atoi(argv[1]);
    double t[3] = {0};
    size_t total = 0;
    for (int a = 2; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f) {
            perror(argv[a]);
            return 2;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        unsigned char *b = malloc((size_t)n + 1);
        if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
            return 2;
        fclose(f);
        for (int r = 0; r < reps; r++) {
            uint8_t d[3][32];
            for (int k = 0; k < 3; k++) {
                int w = (k + r) % 3;
                double t0 = cpu();
                hash(w, b, (size_t)n, d[w]);
                t[w] += cpu() - t0;
            }
            if (memcmp(d[0], d[1], 32) || memcmp(d[0], d[2], 32)) {
                fprintf(stderr, "bench-sha256: %s: the digests differ\n", argv[a]);
                return 1;
            }
            total += (size_t)n;
        }
        free(b);
    }
    const char *name[3] = {"cdr_sha256 (src/sha256)", "nettle 3.8, direct", "OpenSSL 3.0 EVP"};
    for (int i = 0; i < 3; i++)
        printf("bench-sha256: %-24s %7.3f s CPU  %7.0f MB/s  x ours %.2f\n", name[i], t[i],
               (double)total / 1e6 / t[i], t[i] / t[0]);
    return 0;
}

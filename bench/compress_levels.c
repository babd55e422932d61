/*
 * The size and time of every brotli quality and zlib level on one body
 * (bench_api.sh saves the API's 1,000-branch overview and runs this on it),
 * the measurement behind API_ENC_*_QUALITY/LEVEL in src/api/api.h. The time
 * is the best of five, on one core, like the API's event loop.
 *
 *   compress_levels FILE
 */
#include <brotli/encode.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    FILE *f = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!f) {
        fprintf(stderr, "usage: compress_levels FILE\n");
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *in = malloc((size_t)n + 1);
    size_t room = BrotliEncoderMaxCompressedSize((size_t)n) + 1024;
    unsigned char *out = malloc(room);
    if (!in || !out || fread(in, 1, (size_t)n, f) != (size_t)n)
        return 1;
    fclose(f);
    printf("| coding, level | bytes | ratio | ms (best of 5) |\n|---|---:|---:|---:|\n");
    for (int q = 1; q <= 11; q++) {
        double best = 1e12;
        size_t size = 0;
        for (int r = 0; r < 5; r++) {
            size = room;
            double t = now_ms();
            if (!BrotliEncoderCompress(q, BROTLI_DEFAULT_WINDOW,
                                       BROTLI_MODE_TEXT, (size_t)n, in, &size,
                                       out))
                return 1;
            t = now_ms() - t;
            best = t < best ? t : best;
        }
        printf("| br %d | %zu | %.1f | %.2f |\n", q, size, (double)n / size,
               best);
    }
    for (int l = 1; l <= 9; l++) {
        double best = 1e12;
        size_t size = 0;
        for (int r = 0; r < 5; r++) {
            z_stream z = {0};
            if (deflateInit2(&z, l, Z_DEFLATED, 15 + 16, 8,
                             Z_DEFAULT_STRATEGY) != Z_OK)
                return 1;
            z.next_in = in;
            z.avail_in = (uInt)n;
            z.next_out = out;
            z.avail_out = (uInt)room;
            double t = now_ms();
            int rc = deflate(&z, Z_FINISH);
            t = now_ms() - t;
            size = z.total_out;
            deflateEnd(&z);
            if (rc != Z_STREAM_END)
                return 1;
            best = t < best ? t : best;
        }
        printf("| gzip %d | %zu | %.1f | %.2f |\n", l, size, (double)n / size,
               best);
    }
    free(in);
    free(out);
    return 0;
}

/*
 * What every fuzz target shares. A target defines LLVMFuzzerInitialize
 * (once per process) and LLVMFuzzerTestOneInput (once per input), and is
 * linked either with libFuzzer (clang -fsanitize=fuzzer, tests/fuzz/run.sh)
 * or with replay.c, which feeds it the seed corpus and the regression
 * inputs in every ordinary build.
 *
 * Besides crashes, leaks and sanitizer reports, a target checks properties
 * of the real code with FUZZ_CHECK: a violated one aborts, so libFuzzer
 * keeps the input and the replay test fails.
 */
#ifndef REPOVIEW_TESTS_FUZZ_FUZZ_H
#define REPOVIEW_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The LLVMFuzzerInitialize of every target: only errors are logged, so
 * the millions of rejected inputs do not each write a warning. */
#define FUZZ_QUIET_INIT                                                     \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                       \
    {                                                                       \
        (void)argc;                                                         \
        (void)argv;                                                         \
        rv_log_min_level = RV_LOG_ERROR;                                    \
        return 0;                                                           \
    }

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__,     \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Splits the input at the first '\n': the head is copied, NUL-terminated,
 * into head (cut at headlen - 1 bytes), and *rest and *restlen are what
 * follows the newline (the whole input is the head when there is none). */
static inline void fuzz_split_line(const uint8_t *data, size_t size,
                                   char *head, size_t headlen,
                                   const uint8_t **rest, size_t *restlen)
{
    size_t n = 0;
    while (n < size && data[n] != '\n')
        n++;
    size_t copy = n < headlen - 1 ? n : headlen - 1;
    for (size_t i = 0; i < copy; i++)
        head[i] = (char)data[i];
    head[copy] = '\0';
    *rest = n < size ? data + n + 1 : data + size;
    *restlen = n < size ? size - n - 1 : 0;
}

#endif

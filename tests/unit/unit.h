/* Minimal assertions shared by the C unit tests: each failing check prints
 * file:line and what it saw; unit_done() prints `<name>: N passed, M failed`
 * and gives main()'s exit status. */
#ifndef PETREL_TESTS_UNIT_H
#define PETREL_TESTS_UNIT_H

#include <stdio.h>

static int unit_pass, unit_fail;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            unit_pass++;                                                    \
        } else {                                                            \
            unit_fail++;                                                    \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
        }                                                                   \
    } while (0)

#define EQ(got, want)                                                       \
    do {                                                                    \
        unsigned long long g_ = (unsigned long long)(got);                  \
        unsigned long long w_ = (unsigned long long)(want);                 \
        CHECK(g_ == w_, "got 0x%llx, want 0x%llx", g_, w_);                 \
    } while (0)

static inline int unit_done(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, unit_pass, unit_fail);
    return unit_fail != 0;
}

#endif

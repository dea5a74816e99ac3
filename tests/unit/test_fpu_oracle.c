/* Checks src/engine/rv64/fpu.c against reference vectors produced by real
 * RISC-V semantics: tests/guest/fpu-oracle/fpu_oracle.c run under
 * qemu-riscv64 (SoftFloat), see scripts/gen-fpu-vectors.sh.
 *
 *   test_fpu_oracle [FILE...]    default: every *.txt in $FPU_VECTORS_DIR, or
 *                                else in tests/unit/fpu_vectors relative to the
 *                                current directory or to the repository the
 *                                executable was built in (BUILD/tests/unit/)
 *
 * Every vector is compared bit-exactly (result register and fflags) three
 * ways:
 *   host  - the normal implementation (host FPU for RNE/RTZ/RDN/RUP)
 *   soft  - the software core forced for every mode (priv test hook)
 *   lazy  - per (op, mode) block, flags accumulated across the whole block
 *           without an fpu_sync in between must equal the OR of the
 *           expected flags (one check per block)
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/rv64/fpu.h"

#define PRIV_SOFT 1u /* FPU_PRIV_SOFT in fpu.c: force the software path */

enum kind { K_OP2, K_SQRT, K_FMA, K_CMP, K_CLASS, K_TOINT, K_FROMINT, K_D2S, K_S2D };

struct opdef {
    const char *name;
    const char *in;  /* operand kinds: s single, d double, x integer */
    char out;
    enum kind kind;
    int arg;         /* fpu_op2 / fpu_cmp / fpu_int, or fma negation bits */
};

#define PREC(sfx, S, C)                                                                     \
    { "fadd." sfx, S S, C, K_OP2, FPU_ADD },                                                \
    { "fsub." sfx, S S, C, K_OP2, FPU_SUB },                                                \
    { "fmul." sfx, S S, C, K_OP2, FPU_MUL },                                                \
    { "fdiv." sfx, S S, C, K_OP2, FPU_DIV },                                                \
    { "fmin." sfx, S S, C, K_OP2, FPU_MIN },                                                \
    { "fmax." sfx, S S, C, K_OP2, FPU_MAX },                                                \
    { "fsgnj." sfx, S S, C, K_OP2, FPU_SGNJ },                                              \
    { "fsgnjn." sfx, S S, C, K_OP2, FPU_SGNJN },                                            \
    { "fsgnjx." sfx, S S, C, K_OP2, FPU_SGNJX },                                            \
    { "fsqrt." sfx, S, C, K_SQRT, 0 },                                                      \
    { "fmadd." sfx, S S S, C, K_FMA, 0 },                                                   \
    { "fmsub." sfx, S S S, C, K_FMA, 1 },                                                   \
    { "fnmsub." sfx, S S S, C, K_FMA, 2 },                                                  \
    { "fnmadd." sfx, S S S, C, K_FMA, 3 },                                                  \
    { "feq." sfx, S S, 'x', K_CMP, FPU_EQ },                                                \
    { "flt." sfx, S S, 'x', K_CMP, FPU_LT },                                                \
    { "fle." sfx, S S, 'x', K_CMP, FPU_LE },                                                \
    { "fclass." sfx, S, 'x', K_CLASS, 0 },                                                  \
    { "fcvt.w." sfx, S, 'x', K_TOINT, FPU_W },                                              \
    { "fcvt.wu." sfx, S, 'x', K_TOINT, FPU_WU },                                            \
    { "fcvt.l." sfx, S, 'x', K_TOINT, FPU_L },                                              \
    { "fcvt.lu." sfx, S, 'x', K_TOINT, FPU_LU },                                            \
    { "fcvt." sfx ".w", "x", C, K_FROMINT, FPU_W },                                         \
    { "fcvt." sfx ".wu", "x", C, K_FROMINT, FPU_WU },                                       \
    { "fcvt." sfx ".l", "x", C, K_FROMINT, FPU_L },                                         \
    { "fcvt." sfx ".lu", "x", C, K_FROMINT, FPU_LU }

static const struct opdef opdefs[] = {
    PREC("s", "s", 's'),
    PREC("d", "d", 'd'),
    { "fcvt.s.d", "d", 's', K_D2S, 0 },
    { "fcvt.d.s", "s", 'd', K_S2D, 0 },
};

static const char *const rm_names[5] = { "rne", "rtz", "rdn", "rup", "rmm" };

static uint64_t run(struct rv64_fpu *e, const struct opdef *o, const uint64_t *v, unsigned rm)
{
    int dbl = o->kind == K_FROMINT ? o->out == 'd' : o->in[0] == 'd';
    switch (o->kind) {
    case K_OP2:
        return dbl ? fpu_op2_d(e, o->arg, v[0], v[1], rm) : fpu_op2_s(e, o->arg, v[0], v[1], rm);
    case K_SQRT:
        return dbl ? fpu_sqrt_d(e, v[0], rm) : fpu_sqrt_s(e, v[0], rm);
    case K_FMA:
        return dbl ? fpu_fma_d(e, v[0], v[1], v[2], o->arg >> 1, o->arg & 1, rm)
                   : fpu_fma_s(e, v[0], v[1], v[2], o->arg >> 1, o->arg & 1, rm);
    case K_CMP:
        return dbl ? fpu_cmp_d(e, o->arg, v[0], v[1]) : fpu_cmp_s(e, o->arg, v[0], v[1]);
    case K_CLASS:
        return dbl ? fpu_class_d(v[0]) : fpu_class_s(v[0]);
    case K_TOINT:
        return dbl ? fpu_to_int_d(e, o->arg, v[0], rm) : fpu_to_int_s(e, o->arg, v[0], rm);
    case K_FROMINT:
        return dbl ? fpu_from_int_d(e, o->arg, v[0], rm) : fpu_from_int_s(e, o->arg, v[0], rm);
    case K_D2S:
        return fpu_d_to_s(e, v[0], rm);
    default:
        return fpu_s_to_d(e, v[0]);
    }
}

struct vec {
    const struct opdef *op;
    int rm;          /* -1: instruction without rm field */
    int line;
    uint64_t in[3], out;
    unsigned flags;
};

static struct vec *vecs;
static size_t nvecs, capvecs;
static long passed, failed;
static int printed;

static int parse_val(char kind, const char *tok, uint64_t *v)
{
    char *end;
    if (kind == 's' && tok[0] == 'u') {
        *v = strtoull(tok + 1, &end, 16);
    } else {
        *v = strtoull(tok, &end, 16);
        if (kind == 's') {
            if (*v >> 32)
                return -1;
            *v |= 0xffffffff00000000ull;
        }
    }
    return *end ? -1 : 0;
}

static int load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("FAIL cannot open vector file %s\n", path);
        failed++;
        return -1;
    }
    char line[512];
    const struct opdef *op = NULL;
    int rm = -1, ln = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *tok[8];
        int n = 0;
        for (char *p = strtok(line, " \t\r\n"); p && n < 8; p = strtok(NULL, " \t\r\n"))
            tok[n++] = p;
        if (n == 0 || tok[0][0] == '#')
            continue;
        if (tok[0][0] == '@') {
            op = NULL;
            for (size_t i = 0; n == 3 && i < sizeof opdefs / sizeof opdefs[0]; i++)
                if (!strcmp(opdefs[i].name, tok[1]))
                    op = &opdefs[i];
            rm = -1;
            for (int i = 0; n == 3 && i < 5; i++)
                if (!strcmp(tok[2], rm_names[i]))
                    rm = i;
            if (!op || (rm < 0 && strcmp(tok[2], "-"))) {
                printf("FAIL %s:%d: unknown block header\n", path, ln);
                bad++;
                op = NULL;
            }
            continue;
        }
        if (!op) {
            bad++;
            continue;
        }
        int nin = (int)strlen(op->in);
        struct vec v = { .op = op, .rm = rm, .line = ln };
        int err = n != nin + 2;
        for (int i = 0; !err && i < nin; i++)
            err |= parse_val(op->in[i], tok[i], &v.in[i]);
        if (!err)
            err |= parse_val(op->out, tok[nin], &v.out);
        if (!err) {
            char *end;
            v.flags = (unsigned)strtoul(tok[nin + 1], &end, 16);
            err |= *end != 0 || v.flags > 31;
        }
        if (err) {
            printf("FAIL %s:%d: malformed vector\n", path, ln);
            bad++;
            continue;
        }
        if (nvecs == capvecs) {
            capvecs = capvecs ? capvecs * 2 : 4096;
            vecs = realloc(vecs, capvecs * sizeof *vecs);
            if (!vecs) {
                perror("realloc");
                exit(2);
            }
        }
        vecs[nvecs++] = v;
    }
    fclose(f);
    failed += bad;
    return 0;
}

static void print_vec(const char *mode, const struct vec *v, uint64_t r, unsigned fl)
{
    if (printed++ >= 60)
        return;
    printf("FAIL [%s] line %d %s %s:", mode, v->line, v->op->name,
           v->rm < 0 ? "-" : rm_names[v->rm]);
    for (size_t i = 0; i < strlen(v->op->in); i++)
        printf(" %016llx", (unsigned long long)v->in[i]);
    printf(" -> got %016llx fl %02x, want %016llx fl %02x\n", (unsigned long long)r, fl,
           (unsigned long long)v->out, v->flags);
}

/* Rounding mode passed for instructions without an rm field: vary it to show
 * it does not matter. */
static unsigned rm_of(const struct vec *v)
{
    return v->rm < 0 ? (unsigned)(v->line % 5) : (unsigned)v->rm;
}

static void check_each(const char *mode, unsigned priv)
{
    struct rv64_fpu e;
    fpu_init(&e);
    e.priv = priv;
    long bad = 0;
    for (size_t i = 0; i < nvecs; i++) {
        const struct vec *v = &vecs[i];
        fpu_set_flags(&e, 0);
        uint64_t r = run(&e, v->op, v->in, rm_of(v));
        fpu_sync(&e);
        if (r == v->out && e.fflags == v->flags) {
            passed++;
        } else {
            failed++;
            bad++;
            print_vec(mode, v, r, e.fflags);
        }
    }
    fpu_sync(&e);
    printf("# %s: %zu vectors, %ld mismatches\n", mode, nvecs, bad);
}

/* Flags accumulate lazily across a block, mixing host and software paths. */
static void check_lazy(void)
{
    struct rv64_fpu e;
    fpu_init(&e);
    fpu_set_flags(&e, 0);
    size_t i = 0;
    long blocks = 0, bad = 0;
    while (i < nvecs) {
        size_t j = i;
        unsigned want = 0;
        fpu_set_flags(&e, 0);
        while (j < nvecs && vecs[j].op == vecs[i].op && vecs[j].rm == vecs[i].rm) {
            want |= vecs[j].flags;
            (void)run(&e, vecs[j].op, vecs[j].in, rm_of(&vecs[j]));
            j++;
        }
        fpu_sync(&e);
        blocks++;
        if (e.fflags == want) {
            passed++;
        } else {
            failed++;
            bad++;
            printf("FAIL [lazy] block %s %s at line %d: flags %02x, want %02x\n",
                   vecs[i].op->name, vecs[i].rm < 0 ? "-" : rm_names[vecs[i].rm], vecs[i].line,
                   e.fflags, want);
        }
        i = j;
    }
    printf("# lazy: %ld blocks, %ld mismatches\n", blocks, bad);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            load(argv[i]);
    } else {
        const char *dir = getenv("FPU_VECTORS_DIR");
        static char exe_rel[4096];
        if (!dir)
            dir = "tests/unit/fpu_vectors";
        DIR *d = opendir(dir);
        if (!d && !getenv("FPU_VECTORS_DIR")) {
            /* not run from the repository root: BUILD/tests/unit/test_fpu_oracle
             * -> BUILD/tests/unit/../../../tests/unit/fpu_vectors */
            ssize_t n = readlink("/proc/self/exe", exe_rel, sizeof exe_rel - 64);
            char *slash = n > 0 ? (exe_rel[n] = 0, strrchr(exe_rel, '/')) : NULL;
            if (slash) {
                strcpy(slash, "/../../../tests/unit/fpu_vectors");
                dir = exe_rel;
                d = opendir(dir);
            }
        }
        if (!d) {
            printf("FAIL cannot open %s (run from the repository root)\n", dir);
            failed++;
        } else {
            struct dirent *de;
            char **names = NULL;
            size_t nn = 0;
            while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l > 4 && !strcmp(de->d_name + l - 4, ".txt")) {
                    names = realloc(names, (nn + 1) * sizeof *names);
                    names[nn] = malloc(strlen(dir) + l + 2);
                    sprintf(names[nn++], "%s/%s", dir, de->d_name);
                }
            }
            closedir(d);
            qsort(names, nn, sizeof *names, cmp_str);
            for (size_t i = 0; i < nn; i++) {
                load(names[i]);
                free(names[i]);
            }
            free(names);
        }
    }
    if (nvecs == 0) {
        printf("FAIL no vectors loaded\n");
        failed++;
    } else {
        check_each("host", 0);
        check_each("soft", PRIV_SOFT);
        check_lazy();
    }
    printf("test_fpu_oracle: %ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}

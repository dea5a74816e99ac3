/* cpumark: a CPU-bound workload in the spirit of CoreMark's mix (our own code,
 * not CoreMark's): linked-list search, reversal and merge sort; a small
 * integer matrix multiply; a state machine scanning number tokens; CRC-16.
 *
 * One source, built three ways: the bare-metal riscv64 guest program
 * (cpumark.c, cpumark2.c = one copy per hart), and natively for the host
 * (bench/cpumark-native.c).  Freestanding: only <stdint.h>, no libc calls.
 *
 * Each kernel checks itself (sortedness and order restored, a matrix sum
 * identity, token counts against a plain separator count) and the final
 * CRC must equal CM_EXPECTED, which the native x86-64 build and the riscv64
 * build must both reproduce: a CPU that computes anything wrong fails.
 */
#ifndef CPUMARK_WORK_H
#define CPUMARK_WORK_H

#include <stdint.h>

#define CM_ITERS 6000u          /* iterations of one run */
#define CM_SEED 0x2545f491u
#define CM_EXPECTED 0x9c2fu     /* CRC after CM_ITERS from CM_SEED */

#define CM_LIST_NODES 96
#define CM_MAT_N 10
#define CM_TEXT_LEN 320

struct cm_node {
    struct cm_node *next;
    int32_t key;
    int32_t val;
};

struct cm_state {
    struct cm_node nodes[CM_LIST_NODES];
    struct cm_node *head;
    int32_t a[CM_MAT_N][CM_MAT_N], b[CM_MAT_N][CM_MAT_N], c[CM_MAT_N][CM_MAT_N];
    char text[CM_TEXT_LEN];
    uint32_t rng;
    uint16_t crc;
    uint32_t errors; /* self-check failures */
};

static inline uint32_t cm_rand(struct cm_state *st)
{
    uint32_t x = st->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return st->rng = x;
}

/* CRC-16/CCITT (polynomial 0x1021), bit by bit, over a 32-bit value's bytes */
static uint16_t cm_crc16_u32(uint16_t crc, uint32_t v)
{
    for (int byte = 0; byte < 4; byte++) {
        crc ^= (uint16_t)((v & 0xff) << 8);
        v >>= 8;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* ---------------------------------------------------------------- lists */
static struct cm_node *cm_list_find(struct cm_node *n, int32_t key)
{
    while (n && n->key != key)
        n = n->next;
    return n;
}

static struct cm_node *cm_list_reverse(struct cm_node *n)
{
    struct cm_node *prev = 0;
    while (n) {
        struct cm_node *next = n->next;
        n->next = prev;
        prev = n;
        n = next;
    }
    return prev;
}

static int cm_le(const struct cm_node *p, const struct cm_node *q, int by_val)
{
    return by_val ? p->val <= q->val : p->key <= q->key;
}

/* Bottom-up merge sort of a singly linked list (stable). */
static struct cm_node *cm_list_sort(struct cm_node *list, int by_val)
{
    for (unsigned width = 1;; width *= 2) {
        struct cm_node *p = list, *tail = 0;
        unsigned merges = 0;
        list = 0;
        while (p) {
            struct cm_node *q = p;
            unsigned psize = 0, qsize = width;
            merges++;
            while (psize < width && q) {
                psize++;
                q = q->next;
            }
            while (psize || (qsize && q)) {
                struct cm_node *e;
                if (!psize || (qsize && q && !cm_le(p, q, by_val))) {
                    e = q;
                    q = q->next;
                    qsize--;
                } else {
                    e = p;
                    p = p->next;
                    psize--;
                }
                if (tail)
                    tail->next = e;
                else
                    list = e;
                tail = e;
            }
            p = q;
        }
        if (tail)
            tail->next = 0;
        if (merges <= 1)
            return list;
    }
}

static uint32_t cm_list_step(struct cm_state *st)
{
    uint32_t sum = 0, found = 0;
    struct cm_node *n;
    for (n = st->head; n; n = n->next)
        n->key = (int32_t)(cm_rand(st) & 0x3ff);
    for (int i = 0; i < 8; i++) {
        struct cm_node *f = cm_list_find(st->head, (int32_t)(cm_rand(st) & 0x3ff));
        if (f) {
            found++;
            sum += (uint32_t)f->val;
        }
    }
    st->head = cm_list_reverse(st->head);
    st->head = cm_list_sort(st->head, 0);
    int32_t last = -1, pos = 0;
    for (n = st->head; n; n = n->next, pos++) {
        if (n->key < last)
            st->errors++;
        last = n->key;
        sum += (uint32_t)(n->key * (pos + 1));
    }
    st->head = cm_list_sort(st->head, 1);
    pos = 0;
    for (n = st->head; n; n = n->next, pos++)
        if (n->val != pos)
            st->errors++;
    if (pos != CM_LIST_NODES)
        st->errors++;
    return sum ^ (found << 24);
}

/* --------------------------------------------------------------- matrix */
static uint32_t cm_matrix_step(struct cm_state *st)
{
    int32_t cola[CM_MAT_N] = {0}, rowb[CM_MAT_N] = {0};
    for (int i = 0; i < CM_MAT_N; i++)
        for (int j = 0; j < CM_MAT_N; j++) {
            st->a[i][j] = (int32_t)(cm_rand(st) & 0xff) - 128;
            st->b[i][j] = (int32_t)(cm_rand(st) & 0xff) - 128;
        }
    for (int i = 0; i < CM_MAT_N; i++)
        for (int j = 0; j < CM_MAT_N; j++) {
            int32_t s = 0;
            for (int k = 0; k < CM_MAT_N; k++)
                s += st->a[i][k] * st->b[k][j];
            st->c[i][j] = s;
        }
    /* sum(C) = sum_k (column k of A summed) * (row k of B summed) */
    int32_t total = 0, expect = 0;
    uint32_t bits = 0;
    for (int i = 0; i < CM_MAT_N; i++)
        for (int j = 0; j < CM_MAT_N; j++) {
            cola[j] += st->a[i][j];
            rowb[i] += st->b[i][j];
            total += st->c[i][j];
            bits += ((uint32_t)st->c[i][j] >> 5) & 0x1f;
        }
    for (int k = 0; k < CM_MAT_N; k++)
        expect += cola[k] * rowb[k];
    if (total != expect)
        st->errors++;
    return (uint32_t)total ^ (bits << 20);
}

/* -------------------------------------------------------- state machine */
enum { S_START, S_SIGN, S_INT, S_DOT, S_FRAC, S_E, S_ESIGN, S_EXP, S_BAD };

static int cm_next_state(int s, char ch)
{
    int digit = ch >= '0' && ch <= '9';
    switch (s) {
    case S_START:
        return digit ? S_INT : (ch == '-' || ch == '+') ? S_SIGN : ch == '.' ? S_DOT : S_BAD;
    case S_SIGN:
        return digit ? S_INT : ch == '.' ? S_DOT : S_BAD;
    case S_INT:
        return digit ? S_INT : ch == '.' ? S_FRAC : ch == 'e' ? S_E : S_BAD;
    case S_DOT:
        return digit ? S_FRAC : S_BAD;
    case S_FRAC:
        return digit ? S_FRAC : ch == 'e' ? S_E : S_BAD;
    case S_E:
        return digit ? S_EXP : (ch == '-' || ch == '+') ? S_ESIGN : S_BAD;
    case S_ESIGN:
    case S_EXP:
        return digit ? S_EXP : S_BAD;
    default:
        return S_BAD;
    }
}

static uint32_t cm_state_step(struct cm_state *st)
{
    static const char alphabet[32] = "0123456789012345678..e-+,,,,xe.";
    uint32_t counts[4] = {0}, transitions = 0, separators = 0;
    for (int i = 0; i < CM_TEXT_LEN; i++)
        st->text[i] = alphabet[cm_rand(st) & 31];
    int s = S_START;
    for (int i = 0; i <= CM_TEXT_LEN; i++) {
        char ch = i < CM_TEXT_LEN ? st->text[i] : ',';
        if (ch == ',') {
            counts[s == S_INT ? 0 : s == S_FRAC ? 1 : s == S_EXP ? 2 : 3]++;
            s = S_START;
            continue;
        }
        int t = cm_next_state(s, ch);
        transitions += t != s;
        s = t;
    }
    for (int i = 0; i < CM_TEXT_LEN; i++)
        separators += st->text[i] == ',';
    if (counts[0] + counts[1] + counts[2] + counts[3] != separators + 1)
        st->errors++;
    return counts[0] | counts[1] << 8 | counts[2] << 16 | counts[3] << 24 | transitions << 12;
}

/* ------------------------------------------------------------------ run */
static void cm_init(struct cm_state *st, uint32_t seed)
{
    for (int i = 0; i < CM_LIST_NODES; i++) {
        st->nodes[i].next = i + 1 < CM_LIST_NODES ? &st->nodes[i + 1] : 0;
        st->nodes[i].key = 0;
        st->nodes[i].val = i;
    }
    st->head = &st->nodes[0];
    st->rng = seed ? seed : 1;
    st->crc = 0xffff;
    st->errors = 0;
}

/* Run `iters` iterations from `seed`; returns the CRC (CM_EXPECTED for
 * CM_ITERS from CM_SEED) and leaves the self-check failures in st->errors. */
static uint16_t cm_run(struct cm_state *st, uint32_t seed, unsigned iters)
{
    cm_init(st, seed);
    for (unsigned i = 0; i < iters; i++) {
        st->crc = cm_crc16_u32(st->crc, cm_list_step(st));
        st->crc = cm_crc16_u32(st->crc, cm_matrix_step(st));
        st->crc = cm_crc16_u32(st->crc, cm_state_step(st));
    }
    return st->crc;
}

#endif

/* rv64: the A extension's memory operations on guest RAM, shared by the
 * interpreter (exec.c) and the JIT's helpers (jit_help.c).  Harts run on
 * their own host threads, so these are host atomics on the RAM pointer
 * (rv64_amo_ptr), and LR/SC is value-based (docs/jit.md, Step 1). */
#ifndef PETREL_RV64_AMO_H
#define PETREL_RV64_AMO_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/rv64/decode.h"

static inline uint64_t amo_calc(unsigned f5, uint64_t old, uint64_t src, bool word)
{
    int64_t so = word ? (int32_t)old : (int64_t)old, ss = word ? (int32_t)src : (int64_t)src;
    uint64_t uo = word ? (uint32_t)old : old, us = word ? (uint32_t)src : src;
    switch (f5) {
    case AMO_SWAP: return src;
    case AMO_ADD: return old + src;
    case AMO_XOR: return old ^ src;
    case AMO_AND: return old & src;
    case AMO_OR: return old | src;
    case AMO_MIN: return so < ss ? old : src;
    case AMO_MAX: return so > ss ? old : src;
    case AMO_MINU: return uo < us ? old : src;
    case AMO_MAXU: return uo > us ? old : src;
    default: return old;
    }
}

/* An AMO on guest RAM at host pointer p (aligned), atomic against the
 * other harts' threads: one host locked instruction where there is one,
 * else a compare-and-swap loop around amo_calc.  Returns the old value
 * (zero-extended).  Locked instructions are full barriers on x86-64, so
 * .aq/.rl need nothing more. */
static inline uint64_t amo_host(unsigned f5, void *p, uint64_t src, bool word)
{
    if (word) {
        uint32_t *q = p, s = (uint32_t)src, old;
        switch (f5) {
        case AMO_SWAP: return __atomic_exchange_n(q, s, __ATOMIC_SEQ_CST);
        case AMO_ADD: return __atomic_fetch_add(q, s, __ATOMIC_SEQ_CST);
        case AMO_XOR: return __atomic_fetch_xor(q, s, __ATOMIC_SEQ_CST);
        case AMO_AND: return __atomic_fetch_and(q, s, __ATOMIC_SEQ_CST);
        case AMO_OR: return __atomic_fetch_or(q, s, __ATOMIC_SEQ_CST);
        default:
            old = __atomic_load_n(q, __ATOMIC_RELAXED);
            while (!__atomic_compare_exchange_n(q, &old, (uint32_t)amo_calc(f5, old, s, true),
                                                true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
                ;
            return old;
        }
    }
    uint64_t *q = p, old;
    switch (f5) {
    case AMO_SWAP: return __atomic_exchange_n(q, src, __ATOMIC_SEQ_CST);
    case AMO_ADD: return __atomic_fetch_add(q, src, __ATOMIC_SEQ_CST);
    case AMO_XOR: return __atomic_fetch_xor(q, src, __ATOMIC_SEQ_CST);
    case AMO_AND: return __atomic_fetch_and(q, src, __ATOMIC_SEQ_CST);
    case AMO_OR: return __atomic_fetch_or(q, src, __ATOMIC_SEQ_CST);
    default:
        old = __atomic_load_n(q, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(q, &old, amo_calc(f5, old, src, false), true,
                                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
            ;
        return old;
    }
}

/* SC: store v at p (aligned) if it still holds `expect`, what LR read
 * (value-based LR/SC: an ABA change in between is let through). */
static inline bool sc_host(void *p, uint64_t expect, uint64_t v, bool word)
{
    if (word) {
        uint32_t e = (uint32_t)expect;
        return __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)v, false,
                                           __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    }
    return __atomic_compare_exchange_n((uint64_t *)p, &expect, v, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_RELAXED);
}

/* A fence whose predecessor set has W and successor set has R (fm normal,
 * not fence.tso) is the one x86-TSO does not give for free: a host full
 * fence.  Every other fence is free on x86-64. */
static inline bool fence_orders_store_load(int32_t imm)
{
    return (imm & FENCE_PW) && (imm & FENCE_SR) && (imm >> 8) != FENCE_FM_TSO;
}

#endif

/* rv64: the Zba and Zbb bit-manipulation extensions.  They decode to one
 * operation, OP_ZB, with the instruction in `rm` (enum rv64_zb) and a shift
 * amount in `imm`; rv64_zb() computes the result. */
#ifndef PETREL_RV64_BITMANIP_H
#define PETREL_RV64_BITMANIP_H

#include <stdbool.h>
#include <stdint.h>

struct rv64_insn;

enum rv64_zb {
    /* Zba */
    ZB_SH1ADD, ZB_SH2ADD, ZB_SH3ADD, ZB_ADD_UW, ZB_SH1ADD_UW, ZB_SH2ADD_UW, ZB_SH3ADD_UW,
    ZB_SLLI_UW,
    /* Zbb */
    ZB_ANDN, ZB_ORN, ZB_XNOR, ZB_CLZ, ZB_CTZ, ZB_CPOP, ZB_CLZW, ZB_CTZW, ZB_CPOPW,
    ZB_MAX, ZB_MAXU, ZB_MIN, ZB_MINU, ZB_SEXT_B, ZB_SEXT_H, ZB_ZEXT_H,
    ZB_ROL, ZB_ROR, ZB_RORI, ZB_ROLW, ZB_RORW, ZB_RORIW, ZB_ORC_B, ZB_REV8,
};

/* Decode a Zba/Zbb instruction into d; false if raw is none. */
bool rv64_decode_zb(uint32_t raw, struct rv64_insn *d);

static inline uint64_t rv64_ror64(uint64_t v, unsigned n)
{
    n &= 63;
    return n ? (v >> n) | (v << (64 - n)) : v;
}

static inline uint32_t rv64_ror32(uint32_t v, unsigned n)
{
    n &= 31;
    return n ? (v >> n) | (v << (32 - n)) : v;
}

static inline uint64_t rv64_zb(unsigned op, uint64_t a, uint64_t b, unsigned sh)
{
    uint64_t wa = (uint32_t)a;
    switch (op) {
    case ZB_SH1ADD: return b + (a << 1);
    case ZB_SH2ADD: return b + (a << 2);
    case ZB_SH3ADD: return b + (a << 3);
    case ZB_ADD_UW: return b + wa;
    case ZB_SH1ADD_UW: return b + (wa << 1);
    case ZB_SH2ADD_UW: return b + (wa << 2);
    case ZB_SH3ADD_UW: return b + (wa << 3);
    case ZB_SLLI_UW: return wa << sh;
    case ZB_ANDN: return a & ~b;
    case ZB_ORN: return a | ~b;
    case ZB_XNOR: return ~(a ^ b);
    case ZB_CLZ: return a ? (uint64_t)__builtin_clzll(a) : 64;
    case ZB_CTZ: return a ? (uint64_t)__builtin_ctzll(a) : 64;
    case ZB_CPOP: return (uint64_t)__builtin_popcountll(a);
    case ZB_CLZW: return wa ? (uint64_t)__builtin_clz((uint32_t)wa) : 32;
    case ZB_CTZW: return wa ? (uint64_t)__builtin_ctz((uint32_t)wa) : 32;
    case ZB_CPOPW: return (uint64_t)__builtin_popcount((uint32_t)wa);
    case ZB_MAX: return (int64_t)a > (int64_t)b ? a : b;
    case ZB_MAXU: return a > b ? a : b;
    case ZB_MIN: return (int64_t)a < (int64_t)b ? a : b;
    case ZB_MINU: return a < b ? a : b;
    case ZB_SEXT_B: return (uint64_t)(int64_t)(int8_t)a;
    case ZB_SEXT_H: return (uint64_t)(int64_t)(int16_t)a;
    case ZB_ZEXT_H: return (uint16_t)a;
    case ZB_ROL: return rv64_ror64(a, (unsigned)(64 - (b & 63)));
    case ZB_ROR: return rv64_ror64(a, (unsigned)b);
    case ZB_RORI: return rv64_ror64(a, sh);
    case ZB_ROLW: return (uint64_t)(int32_t)rv64_ror32((uint32_t)a, (unsigned)(32 - (b & 31)));
    case ZB_RORW: return (uint64_t)(int32_t)rv64_ror32((uint32_t)a, (unsigned)b);
    case ZB_RORIW: return (uint64_t)(int32_t)rv64_ror32((uint32_t)a, sh);
    case ZB_ORC_B: {
        uint64_t r = 0;
        for (unsigned i = 0; i < 64; i += 8)
            if ((a >> i) & 0xff)
                r |= 0xffull << i;
        return r;
    }
    case ZB_REV8: return __builtin_bswap64(a);
    default: return 0;
    }
}

#endif

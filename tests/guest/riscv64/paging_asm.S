/* paging test helpers */
    .option norelax
    .text
/* u64 mprv_load(u64 va, u64 mpp): one load with mstatus.MPRV = 1, MPP = mpp */
    .globl mprv_load
mprv_load:
    li t0, (3 << 11)
    csrc mstatus, t0
    csrs mstatus, a1
    li t1, (1 << 17)
    csrs mstatus, t1
    ld a0, 0(a0)
    csrc mstatus, t1
    ret
/* void mprv_store(u64 va, u64 v, u64 mpp) */
    .globl mprv_store
mprv_store:
    li t0, (3 << 11)
    csrc mstatus, t0
    csrs mstatus, a2
    li t1, (1 << 17)
    csrs mstatus, t1
    sd a1, 0(a0)
    csrc mstatus, t1
    ret

/* fp test helpers: the FP instruction under test is the first one of each
 * function, so an illegal-instruction trap has epc == the function address */
    .option norelax
    .text
.macro FN name
    .globl \name
    .balign 4
\name:
.endm

FN fp_add_probe
    fadd.d ft3, ft0, ft1        /* dynamic rm: 0x021071d3 */
    ret
FN fadd_dyn
    fadd.d ft2, ft0, ft1
    fmv.x.d a0, ft2
    ret
FN fp_illegal_rm
    .word 0x02105153            /* fadd.d ft2, ft0, ft1 with rm = 5 (reserved) */
    ret
FN fp_fld_probe
    fld ft4, 0(a0)
    ret
FN fp_fsd_probe
    fsd ft4, 0(a0)
    ret
FN fp_fmvxd_probe
    fmv.x.d a0, ft4
    ret
FN fp_fmvdx_probe
    fmv.d.x ft4, zero
    ret
FN fp_frflags_probe
    frflags a0
    ret
FN fp_fsflags_probe
    fsflags zero
    ret

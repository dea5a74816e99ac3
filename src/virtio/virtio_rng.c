/* virtio-rng (virtio spec 5.4): one request queue; each chain's writable
 * buffers are filled from the host's getrandom(2), at most
 * RNG_MAX_REQUEST bytes per chain. */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "virtio/virtio_pci.h"

#define RNG_QUEUE_SIZE 64
#define RNG_MAX_REQUEST 65536u
#define PCI_CLASS_OTHERS 0xff0000

struct virtio_rng {
    struct virtio_pci vp;
    struct virtq_chain chain;
};

/* Fill up to max bytes of c's writable buffers; returns bytes written. */
static uint32_t fill_random(const struct virtq_chain *c, uint32_t max)
{
    uint32_t done = 0;
    for (unsigned i = c->nout; i < c->nout + c->nin && done < max; i++) {
        const struct virtq_seg *s = &c->seg[i];
        uint32_t want = s->len < max - done ? s->len : max - done, got = 0;
        while (got < want) {
            ssize_t n = getrandom(s->p + got, want - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                virtq_chain_mark_dirty(c, s->p, got);
                return done + got;
            }
            got += (uint32_t)n;
        }
        virtq_chain_mark_dirty(c, s->p, got);   /* diff snapshots */
        done += got;
    }
    return done;
}

static void rng_queue_notify(struct virtio_dev *vd, unsigned q)
{
    struct virtio_rng *r = vd->opaque;
    bool pushed = false;
    while (virtio_queue_pop(vd, q, &r->chain) > 0) {
        if (!r->chain.nin)
            virtio_log(vd, "request without a writable buffer");
        virtio_queue_push(vd, q, &r->chain, fill_random(&r->chain, RNG_MAX_REQUEST));
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_used(vd, q);
}

static const struct virtio_dev_ops rng_ops = {
    .queue_notify = rng_queue_notify,
};

static void rng_free(struct virtio_pci *vp)
{
    free(vp->vdev.opaque);
}

int virtio_rng_create(const struct virtio_host *h, const char *opts, struct err *e)
{
    if (*opts)
        return err_set(e, -EINVAL, "virtio-rng takes no options (got '%s')", opts);
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r)
        return err_set(e, -ENOMEM, "virtio-rng: out of memory");
    virtio_dev_init(&r->vp.vdev, "virtio-rng", VIRTIO_ID_RNG, 0, 1, RNG_QUEUE_SIZE, 0, h->mem,
                    &rng_ops, r);
    int ret = virtio_pci_init(&r->vp, PCI_CLASS_OTHERS, rng_free, e);
    if (ret == 0)
        ret = pci_bus_plug(h->pb, &r->vp.pci, e);
    if (ret < 0)
        free(r);
    return ret;
}

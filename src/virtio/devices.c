/* Virtio devices by name, for `petrel run --device NAME[,OPTS]`. */
#include <errno.h>
#include <string.h>

#include "virtio/virtio_pci.h"

static const struct {
    const char *name;
    int (*create)(const struct virtio_host *h, const char *opts, struct err *e);
} device_types[] = {
    { "virtio-rng", virtio_rng_create },
    { "virtio-console", virtio_console_create },
    { "virtio-net", virtio_net_create },
    { "virtio-keyboard", virtio_keyboard_create },
    { "virtio-tablet", virtio_tablet_create },
    { "virtio-gpu", virtio_gpu_create },
    { "virtio-vsock", virtio_vsock_create },
    { "virtio-balloon", virtio_balloon_create },
};

#define NTYPES (sizeof(device_types) / sizeof(device_types[0]))

/* The type named by spec's part before the first comma, or -1. */
static int find_type(const char *spec)
{
    size_t n = strcspn(spec, ",");
    for (unsigned i = 0; i < NTYPES; i++)
        if (strlen(device_types[i].name) == n && !strncmp(spec, device_types[i].name, n))
            return (int)i;
    return -1;
}

bool virtio_device_known(const char *spec)
{
    return find_type(spec) >= 0;
}

int virtio_pci_create(const struct virtio_host *h, const char *spec, struct err *e)
{
    int t = find_type(spec);
    if (t < 0)
        return err_set(e, -ENOENT, "unknown device '%.*s' (known: " VIRTIO_DEVICE_NAMES ")",
                       (int)strcspn(spec, ","), spec);
    const char *opts = spec + strcspn(spec, ",");
    return device_types[t].create(h, *opts ? opts + 1 : opts, e);
}

/* Virtio devices by name, for `petrel run --device NAME`. */
#include <errno.h>
#include <string.h>

#include "virtio/virtio_pci.h"

static const struct {
    const char *name;
    int (*create)(struct pci_bus *pb, const struct gmem *mem, struct err *e);
} device_types[] = {
    { "virtio-rng", virtio_rng_create },
};

bool virtio_device_known(const char *name)
{
    for (unsigned i = 0; i < sizeof(device_types) / sizeof(device_types[0]); i++)
        if (!strcmp(name, device_types[i].name))
            return true;
    return false;
}

int virtio_pci_create(const char *name, struct pci_bus *pb, const struct gmem *mem,
                      struct err *e)
{
    for (unsigned i = 0; i < sizeof(device_types) / sizeof(device_types[0]); i++)
        if (!strcmp(name, device_types[i].name))
            return device_types[i].create(pb, mem, e);
    return err_set(e, -ENOENT, "unknown device '%s' (known: " VIRTIO_DEVICE_NAMES ")", name);
}

/* virtio-gpu (virtio spec 1.2, 5.7), 2D: the protocol constants and the
 * device's limits (exposed for tests).  The device: virtio_gpu.c. */
#ifndef PETREL_VIRTIO_GPU_H
#define PETREL_VIRTIO_GPU_H

#include <stdint.h>

#define VIRTIO_ID_GPU 16

/* commands (struct virtio_gpu_ctrl_hdr.type) */
#define VIRTIO_GPU_CMD_GET_DISPLAY_INFO 0x0100
#define VIRTIO_GPU_CMD_RESOURCE_CREATE_2D 0x0101
#define VIRTIO_GPU_CMD_RESOURCE_UNREF 0x0102
#define VIRTIO_GPU_CMD_SET_SCANOUT 0x0103
#define VIRTIO_GPU_CMD_RESOURCE_FLUSH 0x0104
#define VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D 0x0105
#define VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING 0x0106
#define VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING 0x0107
#define VIRTIO_GPU_CMD_GET_CAPSET_INFO 0x0108
#define VIRTIO_GPU_CMD_GET_EDID 0x010a
#define VIRTIO_GPU_CMD_UPDATE_CURSOR 0x0300
#define VIRTIO_GPU_CMD_MOVE_CURSOR 0x0301

/* responses */
#define VIRTIO_GPU_RESP_OK_NODATA 0x1100
#define VIRTIO_GPU_RESP_OK_DISPLAY_INFO 0x1101
#define VIRTIO_GPU_RESP_ERR_UNSPEC 0x1200
#define VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY 0x1201
#define VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID 0x1202
#define VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID 0x1203
#define VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID 0x1204
#define VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER 0x1205

#define VIRTIO_GPU_FLAG_FENCE 1u

/* formats (enum virtio_gpu_formats) */
#define VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM 1
#define VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM 2
#define VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM 3
#define VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM 4
#define VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM 67
#define VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM 68
#define VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM 121
#define VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM 134

/* wire sizes */
#define GPU_HDR_LEN 24                  /* struct virtio_gpu_ctrl_hdr */
#define GPU_DISPLAY_INFO_LEN (GPU_HDR_LEN + 16 * 24)
#define GPU_ATTACH_LEN (GPU_HDR_LEN + 8)        /* before the entries */
#define GPU_ENTRY_LEN 16                /* struct virtio_gpu_mem_entry */
#define GPU_MAX_REQ 64                  /* the longest fixed-size command */

/* the device's limits */
#define GPU_MAX_RES_BYTES (64u << 20)   /* one resource: 4096x4096 */
#define GPU_MAX_TOTAL_BYTES (256u << 20)
#define GPU_MAX_RESOURCES 512
#define GPU_MAX_ENTRIES 16384           /* a 64 MiB resource in 4 KiB pages */
#define GPU_MIN_RES 64                  /* xres=, yres= */
#define GPU_MAX_RES 4096
#define GPU_DEFAULT_XRES 1024
#define GPU_DEFAULT_YRES 768

struct gpu_rect {
    uint32_t x, y, width, height;
};

#endif

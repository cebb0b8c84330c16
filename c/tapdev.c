/* ethcloud tap helper: turns an open /dev/net/tun fd into a tap device.
 * Owns the TUNSETIFF ioctl only; opening and closing the fd is done in Rust (src/os/sys/tap.rs). */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

/* Attaches `fd` to the tap device `name` (a template like "ethcloud%d" is allowed) with
 * IFF_TAP | IFF_NO_PI (plus IFF_VNET_HDR if `vnet_hdr` is non-zero: every frame read or
 * written then carries a 10-byte virtio-net header; plus IFF_MULTI_QUEUE if `multi_queue` is
 * non-zero: each fd so attached is one queue of the device), then copies the kernel's chosen
 * name back into `name`.
 * `name` must be a NUL-terminated buffer of `name_len` >= IFNAMSIZ bytes.
 * Returns 0 on success or -errno. */
int ethcloud_tap_setup(int fd, char *name, size_t name_len, int vnet_hdr, int multi_queue)
{
    struct ifreq ifr;

    if (name == NULL || name_len < IFNAMSIZ)
        return -EINVAL;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (vnet_hdr)
        ifr.ifr_flags |= IFF_VNET_HDR;
    if (multi_queue)
        ifr.ifr_flags |= IFF_MULTI_QUEUE;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, (void *)&ifr) < 0)
        return -errno;
    /* The kernel's name is NUL-terminated within IFNAMSIZ; copy it with its terminator. */
    memset(name, 0, name_len);
    memcpy(name, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ - 1));
    return 0;
}

// Runs in the CHILD, between clone3 and execve: the filesystem steps of the checklist (child.c),
// the policy's mounts before the second gate and the task's files after it. Async-signal-safe
// like the rest of the child: raw syscalls only, no malloc, no locks.
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/// apply_op: the bind itself worked, making its flags recursive did not.
#define FAIL_RECURSIVE -2

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
/// From linux/mount.h, which clashes with sys/mount.h.
struct edgy_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define EDGY_MOUNT_ATTR_RDONLY 0x00000001ULL
#define EDGY_MOUNT_ATTR_NOSUID 0x00000002ULL
#define EDGY_MOUNT_ATTR_NODEV 0x00000004ULL
#define EDGY_MOUNT_ATTR_NOEXEC 0x00000008ULL

// ---- Step 3: the filesystem -------------------------------------------------------------------

/// The remount above changes the top mount only: a submount of the source (a tmpfs under a bound
/// directory) would stay writable, suid and dev. mount_setattr(AT_RECURSIVE) sets the same
/// restrictions on the whole tree (it only adds flags, so locked ones are kept). Kernels without
/// it (ENOSYS before 5.12) or that refuse it (EINVAL) fail the setup: the mount would not mean
/// what the policy says.
static int bind_flags_recursive(const char *path, uint64_t flags) {
    struct edgy_mount_attr attr = {0, 0, 0, 0};
    if (flags & MS_RDONLY) attr.attr_set |= EDGY_MOUNT_ATTR_RDONLY;
    if (flags & MS_NOSUID) attr.attr_set |= EDGY_MOUNT_ATTR_NOSUID;
    if (flags & MS_NODEV) attr.attr_set |= EDGY_MOUNT_ATTR_NODEV;
    if (flags & MS_NOEXEC) attr.attr_set |= EDGY_MOUNT_ATTR_NOEXEC;
    if (attr.attr_set == 0) return OK;
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, (long)AT_RECURSIVE, &attr, sizeof attr) != 0) return FAIL_RECURSIVE;
    return OK;
}

static int apply_op(const void *plan, const struct edgy_fs_op *op) {
    const char *path = edgy_at(plan, op->path);
    const char *source = edgy_at(plan, op->source);
    switch (op->kind) {
    case EDGY_OP_MKDIR:
        if (syscall(SYS_mkdirat, AT_FDCWD, path, op->mode) != 0 && errno != EEXIST) return FAIL;
        return OK;
    case EDGY_OP_MKFILE: {
        long fd = syscall(SYS_openat, AT_FDCWD, path, O_CREAT | O_WRONLY | O_CLOEXEC, op->mode);
        if (fd < 0) return FAIL;
        syscall(SYS_close, fd);
        return OK;
    }
    case EDGY_OP_BIND:
        if (syscall(SYS_mount, source, path, NULL, MS_BIND | MS_REC, NULL) != 0) {
            if ((op->op_flags & EDGY_OP_OPTIONAL) && errno == ENOENT) return OK;
            return FAIL;
        }
        // A bind mount takes its flags only on a remount (mount(2), "Creating a bind mount").
        if (syscall(SYS_mount, NULL, path, NULL, MS_BIND | MS_REMOUNT | op->mount_flags, NULL) != 0) return FAIL;
        return bind_flags_recursive(path, op->mount_flags);
    case EDGY_OP_TMPFS:
        if (syscall(SYS_mount, "tmpfs", path, "tmpfs", op->mount_flags, edgy_at(plan, op->data)) != 0) return FAIL;
        return OK;
    case EDGY_OP_PROC:
        if (syscall(SYS_mount, "proc", path, "proc", op->mount_flags, edgy_at(plan, op->data)) != 0) return FAIL;
        return OK;
    case EDGY_OP_SYMLINK:
        if (syscall(SYS_symlinkat, source, AT_FDCWD, path) != 0) return FAIL;
        return OK;
    case EDGY_OP_WRITE_FILE: {
        long fd = syscall(SYS_openat, AT_FDCWD, path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return FAIL;
        int r = OK;
        if (op->data_len > 0 && edgy_sys_write_all((int)fd, edgy_at(plan, op->data), op->data_len) != 0) r = FAIL;
        if (r == OK && syscall(SYS_fchown, fd, op->uid, op->gid) != 0) r = FAIL;
        if (r == OK && syscall(SYS_fchmod, fd, op->mode) != 0) r = FAIL;
        int saved = errno;
        syscall(SYS_close, fd);
        errno = saved;
        return r;
    }
    case EDGY_OP_CHOWN:
        if (syscall(SYS_fchownat, AT_FDCWD, path, op->uid, op->gid, AT_SYMLINK_NOFOLLOW) != 0) return FAIL;
        return OK;
    default:
        errno = EINVAL;
        return FAIL;
    }
}

/// The policy's filesystem, from the shape's filesystem plan, before the second gate: every mount
/// under a fresh tmpfs root, then pivot_root into it, detach the host's root and make "/"
/// read-only. What stays writable (the working directory, /tmp) are their own tmpfs mounts.
int edgy_step_filesystem(const struct edgy_fs_plan *fs, struct step_failure *failure) {
    failure->op_index = -1;
    failure->stage = EDGY_STAGE_MOUNT_PRIVATE;
    // Nothing we mount may propagate back to the host.
    if (syscall(SYS_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return FAIL;
    const char *root = edgy_at(fs, fs->root);
    failure->stage = EDGY_STAGE_MOUNT_ROOT;
    if (syscall(SYS_mount, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, edgy_at(fs, fs->root_options)) != 0) return FAIL;
    failure->stage = EDGY_STAGE_FS_OP;
    const struct edgy_fs_op *ops = (const struct edgy_fs_op *)(const void *)edgy_at(fs, fs->ops);
    for (uint32_t i = 0; i < fs->n_ops; i++) {
        failure->op_index = (int)i;
        int r = apply_op(fs, &ops[i]);
        if (r == FAIL_RECURSIVE) failure->stage = EDGY_STAGE_MOUNT_RECURSIVE;
        if (r != OK) return FAIL;
    }
    failure->op_index = -1;

    // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then drops
    // it without needing a directory for it (runc, "pivot_root(2)" NOTES).
    failure->stage = EDGY_STAGE_PIVOT_ROOT;
    if (syscall(SYS_chdir, root) != 0) return FAIL;
    if (syscall(SYS_pivot_root, ".", ".") != 0) return FAIL;
    failure->stage = EDGY_STAGE_DETACH_OLD_ROOT;
    if (syscall(SYS_umount2, ".", MNT_DETACH) != 0) return FAIL;
    if (syscall(SYS_chdir, "/") != 0) return FAIL;
    failure->stage = EDGY_STAGE_REMOUNT_ROOT_RO;
    if (syscall(SYS_mount, NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) != 0) return FAIL;
    return OK;
}

/// The task's files, from the task plan, after the second gate: written into the working
/// directory's tmpfs (already mounted, inside the pivoted root), then chdir there.
int edgy_step_task_files(const struct edgy_task_plan *plan, struct step_failure *failure) {
    failure->stage = EDGY_STAGE_TASK_FILE;
    const struct edgy_fs_op *ops = (const struct edgy_fs_op *)(const void *)edgy_at(plan, plan->ops);
    for (uint32_t i = 0; i < plan->n_ops; i++) {
        failure->op_index = (int)i;
        if (apply_op(plan, &ops[i]) != OK) return FAIL;
    }
    failure->op_index = -1;
    failure->stage = EDGY_STAGE_CHDIR;
    const char *workdir = edgy_at(plan, plan->workdir);
    if (workdir && syscall(SYS_chdir, workdir) != 0) return FAIL;
    return OK;
}

// ---- Step 3b: the user namespace's own limits ------------------------------------------------

/// Writes the plan's /proc/sys/user limits, which belong to the user namespace the writer is in
/// (the kernel shows each namespace its own table, writable with CAP_SYS_RESOURCE over it), so only
/// the child can set them: the parent is root of the initial namespace, and as a multithreaded
/// process it cannot setns into ours. Done as root of the new namespace, right after the cgroup
/// namespace (which the limits may forbid) and before anything of the workload's.
///
/// Why it matters: the kernel charges a count (inotify instances, namespaces...) to the caller's
/// namespace and then to each ancestor's entry for the namespace's owner, checking every level's
/// limit. The daemon owns every jail's namespace, so without a limit of its own a jail spends host
/// root's allowance. A file the kernel lacks (e.g. fanotify's before 5.13) is skipped.
int edgy_step_userns_limits(const struct edgy_fs_plan *fs, struct step_failure *failure) {
    static const char prefix[] = "/proc/sys/user/";
    const uint64_t *table = (const uint64_t *)(const void *)edgy_at(fs, fs->userns_limits);
    for (uint32_t i = 0; i < fs->n_userns_limits; i++) {
        failure->op_index = (int)i;
        const char *name = edgy_at(fs, table[2 * i]);
        const char *value = edgy_at(fs, table[2 * i + 1]);
        char path[96];
        size_t name_len = strlen(name);
        if (sizeof prefix + name_len > sizeof path) {
            errno = ENAMETOOLONG;
            return FAIL;
        }
        memcpy(path, prefix, sizeof prefix - 1);
        memcpy(path + sizeof prefix - 1, name, name_len + 1);
        long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) continue;
        if (fd < 0) return FAIL;
        int r = edgy_sys_write_all((int)fd, value, strlen(value)) == 0 ? OK : FAIL;
        int saved = errno;
        syscall(SYS_close, fd);
        errno = saved;
        if (r != OK) return FAIL;
    }
    failure->op_index = -1;
    return OK;
}

// ---- Step 4: hostname and network -------------------------------------------------------------

int edgy_step_loopback(void) {
    long s = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return FAIL;
    struct ifreq req;
    memset(&req, 0, sizeof req);
    req.ifr_name[0] = 'l';
    req.ifr_name[1] = 'o';
    int r = FAIL;
    if (syscall(SYS_ioctl, s, SIOCGIFFLAGS, &req) == 0) {
        req.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (syscall(SYS_ioctl, s, SIOCSIFFLAGS, &req) == 0) r = OK;
    }
    int saved = errno;
    syscall(SYS_close, s);
    errno = saved;
    return r;
}

static void set_inet(struct sockaddr *into, uint32_t address_be) {
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = address_be;
    memcpy(into, &in, sizeof in);
}

int edgy_step_egress(const struct edgy_shape *shape) {
    long s = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return FAIL;
    struct ifreq req;
    memset(&req, 0, sizeof req);
    memcpy(req.ifr_name, EDGY_EGRESS_INTERFACE, sizeof EDGY_EGRESS_INTERFACE);
    int r = FAIL;
    set_inet(&req.ifr_addr, shape->egress_address);
    if (syscall(SYS_ioctl, s, SIOCSIFADDR, &req) != 0) goto out;
    uint32_t mask = shape->egress_prefix ? ~0u << (32 - shape->egress_prefix) : 0;
    set_inet(&req.ifr_netmask, __builtin_bswap32(mask));
    if (syscall(SYS_ioctl, s, SIOCSIFNETMASK, &req) != 0) goto out;
    if (syscall(SYS_ioctl, s, SIOCGIFFLAGS, &req) != 0) goto out;
    req.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (syscall(SYS_ioctl, s, SIOCSIFFLAGS, &req) != 0) goto out;
    // Everything goes to the host's end of the pair, which filters it.
    struct rtentry route;
    memset(&route, 0, sizeof route);
    set_inet(&route.rt_dst, 0);
    set_inet(&route.rt_genmask, 0);
    set_inet(&route.rt_gateway, shape->egress_gateway);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    if (syscall(SYS_ioctl, s, SIOCADDRT, &route) != 0) goto out;
    r = OK;
out:;
    int saved = errno;
    syscall(SYS_close, s);
    errno = saved;
    return r;
}

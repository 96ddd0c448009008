// Runs in the CHILD, between clone3 and execve. Async-signal-safe: raw syscalls only, no malloc,
// no stdio, no glibc wrappers that take locks (setresuid/setgroups/signal: youki #2425,
// swift-subprocess #374). Before the second gate it reads only its shape and filesystem plan (the
// parent's memory, copied at the clone); after it, the task plan it maps from the memfd it was
// cloned with (a jail may be parked, its filesystem built, long before its request exists: the
// supervisor's pool), and whether its filesystem plan had a filter.
//
// The checklist, in order: fds, gate 1, session, mounts, pivot_root, hostname/loopback, seccomp
// when the filesystem plan has it ("prepared"), gate 2, plan, signals, task files, rlimits, ids,
// capabilities, no_new_privs, seccomp when the task plan has it, execve. The filesystem steps
// (mounts, task files, user namespace limits, loopback) are in child_fs.c. Each failure names its
// own stage (enum edgy_stage).
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

long edgy_sys_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        long n = syscall(SYS_write, fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

__attribute__((noreturn)) static void fail(int error_fd, int stage, int op_index, int err) {
    struct edgy_child_error record = {.stage = stage, .err = err, .op_index = op_index, .listener_fd = -1};
    edgy_sys_write_all(error_fd, &record, sizeof record);
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

/// Where step_fds puts the child's own fds.
#define EDGY_ERROR_FD 3
#define EDGY_GATE_FD 4
#define EDGY_PLAN_FD 5
#define EDGY_N_FDS 6

// ---- Step 1: the gate -------------------------------------------------------------------------

/// Blocks until the parent sends a byte: at the first gate, once it has written the id maps and
/// placed us in our cgroup; at the second, once the task plan is in the memfd. EOF (the parent
/// closed the gate without a byte) means abort. The gate stays open (CLOEXEC) for the seccomp
/// handoff.
static int step_gate(int gate_fd) {
    char c;
    for (;;) {
        long n = syscall(SYS_read, gate_fd, &c, 1);
        if (n == 1) break;
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) errno = ECANCELED;
        return FAIL;
    }
    return OK;
}

// ---- Step 1b: the plan -------------------------------------------------------------------------

/// Maps the plan blob the parent wrote into our memfd before opening the gate, checks that its
/// header is whole, and closes the memfd. The mapping is private and read-only; it goes at execve.
static const struct edgy_task_plan *step_plan(void) {
    struct stat st;
    if (syscall(SYS_fstat, EDGY_PLAN_FD, &st) != 0) return 0;
    if ((uint64_t)st.st_size < sizeof(struct edgy_task_plan)) {
        errno = EINVAL;
        return 0;
    }
    // Every argument as a full register: syscall() is variadic, and a bare 0 leaves the offset's
    // upper half undefined.
    long base = syscall(SYS_mmap, (void *)0, (size_t)st.st_size, (long)PROT_READ, (long)MAP_PRIVATE,
                        (long)EDGY_PLAN_FD, (off_t)0);
    if (base < 0 && base > -4096) {
        errno = (int)-base;
        return 0;
    }
    if ((void *)base == MAP_FAILED) return 0;
    syscall(SYS_close, EDGY_PLAN_FD);
    const struct edgy_task_plan *plan = (const struct edgy_task_plan *)base;
    if (plan->blob_len != (uint64_t)st.st_size) {
        errno = EINVAL;
        return 0;
    }
    return plan;
}

// ---- Step 2: file descriptors, signals, session -----------------------------------------------


/// stdin/stdout/stderr onto 0..2, the error pipe onto 3, the gate onto 4 and the plan memfd onto 5
/// (all three CLOEXEC), every other fd closed (swift-subprocess, containerization's fd shuffle).
/// Every source is first copied above 5, so no dup3 can clobber a source on a target number.
static int step_fds(const struct edgy_shape *shape, int *error_fd, int gate_fd, int plan_fd) {
    int src[EDGY_N_FDS] = {shape->stdin_fd, shape->stdout_fd, shape->stderr_fd, *error_fd, gate_fd, plan_fd};
    for (int i = 0; i < EDGY_N_FDS; i++) {
        if (src[i] < 0) continue;
        src[i] = (int)syscall(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, EDGY_N_FDS);
        if (src[i] < 0) return FAIL;
    }
    for (int i = 0; i < EDGY_N_FDS; i++) {
        if (src[i] < 0) {
            syscall(SYS_close, i);
            continue;
        }
        if (syscall(SYS_dup3, src[i], i, i >= 3 ? O_CLOEXEC : 0) < 0) return FAIL;
        if (i == EDGY_ERROR_FD) *error_fd = EDGY_ERROR_FD;
    }
    if (syscall(SYS_close_range, EDGY_N_FDS, ~0U, 0) != 0) {
        // Kernels before 5.9: close one by one up to the hard limit.
        struct { uint64_t cur, max; } rl;
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) != 0) return FAIL;
        for (uint64_t fd = EDGY_N_FDS; fd < rl.max && fd < (1u << 20); fd++) syscall(SYS_close, (int)fd);
    }
    return OK;
}

struct kernel_sigaction {
    void *handler;
    unsigned long flags;
    void *restorer;
    uint64_t mask;
};

/// Every disposition back to default (CLONE_CLEAR_SIGHAND keeps SIG_IGN, e.g. the daemon's
/// SIGPIPE) and an empty mask (the parent blocked all but SIGCHLD around the clone).
static int step_signal_dispositions(void) {
    struct kernel_sigaction dfl = {.handler = SIG_DFL, .flags = 0, .restorer = 0, .mask = 0};
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));  // EINVAL for 32, 33: fine
    }
    return OK;
}

static int step_signal_mask(void) {
    uint64_t empty = 0;
    if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, sizeof empty) != 0) return FAIL;
    return OK;
}


// ---- Step 5 and 6: rlimits, ids, capabilities -------------------------------------------------

static int step_rlimits(const struct edgy_task_plan *plan, struct step_failure *failure) {
    for (uint32_t i = 0; i < plan->n_rlimits && i < EDGY_MAX_RLIMITS; i++) {
        struct { uint64_t cur, max; } rl = {plan->rlimits[i].soft, plan->rlimits[i].hard};
        failure->op_index = plan->rlimits[i].resource;
        if (syscall(SYS_prlimit64, 0, plan->rlimits[i].resource, &rl, NULL) != 0) return FAIL;
    }
    failure->op_index = -1;
    return OK;
}

/// Empties the capability bounding set and the ambient set, while parked (as root of the user
/// namespace, with CAP_SETPCAP). It limits only what execve can grant later: the effective set the
/// task's files and the id changes need is untouched until step_identity zeroes it.
static int step_bounding_set(uint32_t last_cap) {
    for (uint32_t cap = 0; cap <= last_cap; cap++) {
        if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return FAIL;
    }
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return FAIL;
    return OK;
}

/// setgroups → setresgid → securebits → setresuid → zero every set (the bounding set is already
/// empty). Securebits need CAP_SETPCAP, which setresuid to a non-root id takes away.
static int step_identity(const struct edgy_task_plan *plan, struct step_failure *failure) {
    failure->stage = EDGY_STAGE_SETGROUPS;
    if (syscall(SYS_setgroups, 0, NULL) != 0) return FAIL;
    failure->stage = EDGY_STAGE_SETRESGID;
    if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) != 0) return FAIL;

    // (The bounding set was emptied while parked: step_bounding_set.)
    // Root inside the jail (uid 0 in a user namespace) gets no capabilities back on execve.
    failure->stage = EDGY_STAGE_SECUREBITS;
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                         SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    if (syscall(SYS_prctl, PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) return FAIL;

    failure->stage = EDGY_STAGE_SETRESUID;
    if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) != 0) return FAIL;

    failure->stage = EDGY_STAGE_CAPS;
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) return FAIL;
    return OK;
}

// ---- Step 7: no_new_privs, seccomp, execve ----------------------------------------------------

static int load_filter(const void *blob, uint64_t filter, uint32_t len, unsigned flags) {
    struct sock_fprog prog = {
        .len = (unsigned short)len,
        .filter = (struct sock_filter *)(uintptr_t)edgy_at(blob, filter),
    };
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/// One filter and its fallback, in either plan blob.
struct filter_pair {
    const void *blob;
    uint64_t filter, fallback;
    uint32_t len, fallback_len;
};

/// Loads the filter with a listener: its kills are user notifications, which the supervisor
/// answers by killing the caller, knowing exactly which syscall it was. The listener fd is
/// CLOEXEC, so it must reach the parent before execve: tell the parent its number, and wait until
/// the parent has taken it (pidfd_getfd). After the second gate the parent then closes the gate;
/// while parked it sends a byte instead, since the gate must open once more. Only read and write
/// run between the load and execve (or, while parked, what Swift's `ParkedFilter` lists), and the
/// compiler refuses a filter that would notify them.
static int step_seccomp(struct filter_pair pair, int parked, int error_fd, struct step_failure *failure) {
    failure->stage = EDGY_STAGE_SECCOMP_LOAD;
    if (pair.len == 0) return OK;
    int listener = load_filter(pair.blob, pair.filter, pair.len, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    if (listener < 0 && errno == EBUSY && pair.fallback_len > 0) {
        // A filter above us has the one listener a task may have: kill outright instead.
        if (load_filter(pair.blob, pair.fallback, pair.fallback_len, 0) != 0) return FAIL;
    } else if (listener < 0) {
        return FAIL;
    }
    failure->stage = EDGY_STAGE_SECCOMP_HANDOFF;
    struct edgy_child_error notice = {.stage = EDGY_STAGE_NONE, .err = 0, .op_index = -1, .listener_fd = listener};
    if (edgy_sys_write_all(error_fd, &notice, sizeof notice) != 0) return FAIL;
    char c;
    long n;
    do {
        n = syscall(SYS_read, EDGY_GATE_FD, &c, 1);
    } while (n < 0 && errno == EINTR);
    if (n != (parked ? 1 : 0)) {
        if (n > 0) errno = EPROTO;
        else if (n == 0) errno = ECANCELED;
        return FAIL;
    }
    return OK;
}

/// Builds the argv/envp pointer arrays on our own stack: no allocation.
static void fill_pointers(const struct edgy_task_plan *plan, uint64_t offsets, uint32_t count, char **out) {
    const uint64_t *table = (const uint64_t *)(const void *)edgy_at(plan, offsets);
    for (uint32_t i = 0; i < count; i++) out[i] = (char *)edgy_at(plan, table[i]);
    out[count] = NULL;
}

static int exec_workload(const struct edgy_task_plan *plan) {
    char *argv[plan->argc + 1];
    char *envp[plan->envc + 1];
    fill_pointers(plan, plan->argv, plan->argc, argv);
    fill_pointers(plan, plan->envp, plan->envc, envp);
    const char *file = edgy_at(plan, plan->exec_path);
    int has_slash = 0;
    for (const char *p = file; *p; p++) has_slash |= (*p == '/');
    if (has_slash || !plan->search_path) {
        syscall(SYS_execve, file, argv, envp);
        return FAIL;
    }
    // PATH search like execvpe, in a stack buffer; remember the most telling error.
    char candidate[4096];
    size_t file_len = strlen(file);
    int best = ENOENT;
    const char *dir = edgy_at(plan, plan->search_path);
    while (*dir) {
        const char *end = dir;
        while (*end && *end != ':') end++;
        size_t dir_len = (size_t)(end - dir);
        if (dir_len + 1 + file_len + 1 <= sizeof candidate) {
            memcpy(candidate, dir, dir_len);
            candidate[dir_len] = '/';
            memcpy(candidate + dir_len + 1, file, file_len + 1);
            syscall(SYS_execve, candidate, argv, envp);
            if (errno == EACCES) best = EACCES;
            else if (errno != ENOENT && errno != ENOTDIR) best = errno;
        }
        dir = *end ? end + 1 : end;
    }
    errno = best;
    return FAIL;
}

// ---- The checklist ----------------------------------------------------------------------------

/// Everything that needs only the shape, done while parked between the two gates: session, root
/// of the user namespace, cgroup namespace, the whole filesystem, hostname, loopback.
static void step_prepare(const struct edgy_shape *shape, int error_fd) {
    const struct edgy_fs_plan *fs = shape->fs;
    struct step_failure failure = {.stage = EDGY_STAGE_NONE, .op_index = -1};
    if (syscall(SYS_setsid) < 0) fail(error_fd, EDGY_STAGE_SETSID, -1, errno);
    if (fs->user_namespace) {
        // Root of the new namespace (a host id from the unprivileged range), so files we create
        // have a mapped owner; we keep our capabilities in the namespace.
        if (syscall(SYS_setresgid, 0, 0, 0) != 0) fail(error_fd, EDGY_STAGE_NS_ROOT, -1, errno);
        if (syscall(SYS_setresuid, 0, 0, 0) != 0) fail(error_fd, EDGY_STAGE_NS_ROOT, -1, errno);
    }
    // After the first gate, so the namespace is rooted at the jail's own cgroup.
    if (fs->unshare_cgroup && syscall(SYS_unshare, CLONE_NEWCGROUP) != 0)
        fail(error_fd, EDGY_STAGE_CGROUP_NS, -1, errno);
    if (fs->user_namespace && edgy_step_userns_limits(fs, &failure) != OK)
        fail(error_fd, EDGY_STAGE_USERNS_LIMITS, failure.op_index, errno);
    syscall(SYS_umask, 0);

    if (edgy_step_filesystem(fs, &failure) != OK) fail(error_fd, failure.stage, failure.op_index, errno);

    const char *hostname = edgy_at(fs, fs->hostname);
    if (hostname && syscall(SYS_sethostname, hostname, strlen(hostname)) != 0)
        fail(error_fd, EDGY_STAGE_HOSTNAME, -1, errno);
    if (fs->loopback_up && edgy_step_loopback() != OK) fail(error_fd, EDGY_STAGE_LOOPBACK, -1, errno);
    if (shape->egress_address && edgy_step_egress(shape) != OK) fail(error_fd, EDGY_STAGE_EGRESS_INTERFACE, -1, errno);
    if (step_bounding_set(fs->last_cap) != OK) fail(error_fd, EDGY_STAGE_CAP_BOUNDING, -1, errno);
    // Default dispositions now; the mask (all but SIGCHLD) stays until the second gate.
    if (step_signal_dispositions() != OK) fail(error_fd, EDGY_STAGE_SIGNAL_DISPOSITIONS, -1, errno);
    // Last while parked: everything after it must be allowed by the filter (see the header).
    struct filter_pair parked = {fs, fs->seccomp_filter, fs->seccomp_fallback, fs->seccomp_len,
                                 fs->seccomp_fallback_len};
    if (step_seccomp(parked, 1, error_fd, &failure) != OK) fail(error_fd, failure.stage, -1, errno);
}

void edgy_child_main(const struct edgy_shape *shape, int gate_fd, int error_fd, int plan_fd) {
    struct step_failure failure = {.stage = EDGY_STAGE_NONE, .op_index = -1};

    // Let go of every fd we do not need before waiting: a child parked at the gate must not hold
    // the pipes of other jails spawned meanwhile.
    if (step_fds(shape, &error_fd, gate_fd, plan_fd) != OK) fail(error_fd, EDGY_STAGE_FDS, -1, errno);
    // While parked: die with the thread that cloned us. (A dead supervisor process also closes the
    // gate, and EOF there aborts.)
    if (shape->parent_death_signal &&
        syscall(SYS_prctl, PR_SET_PDEATHSIG, shape->parent_death_signal, 0, 0, 0) != 0)
        fail(error_fd, EDGY_STAGE_PDEATHSIG, -1, errno);

    // First gate: id maps written, cgroup joined. Then the policy's whole filesystem, and word
    // to the parent that we are prepared (a record with no stage).
    if (step_gate(EDGY_GATE_FD) != OK) fail(error_fd, EDGY_STAGE_FIRST_GATE, -1, errno);
    step_prepare(shape, error_fd);
    struct edgy_child_error prepared = {.stage = EDGY_STAGE_NONE, .err = 0, .op_index = -1, .listener_fd = -1};
    if (edgy_sys_write_all(error_fd, &prepared, sizeof prepared) != 0) fail(error_fd, EDGY_STAGE_REPORT_PREPARED, -1, errno);

    // Second gate: the task plan is in the memfd.
    if (step_gate(EDGY_GATE_FD) != OK) fail(error_fd, EDGY_STAGE_SECOND_GATE, -1, errno);
    const struct edgy_task_plan *plan = step_plan();
    if (!plan) fail(error_fd, EDGY_STAGE_TASK_PLAN_MAP, -1, errno);
    if (step_signal_mask() != OK) fail(error_fd, EDGY_STAGE_SIGNAL_MASK, -1, errno);
    if (edgy_step_task_files(plan, &failure) != OK) fail(error_fd, failure.stage, failure.op_index, errno);

    failure.stage = EDGY_STAGE_RLIMIT;
    if (step_rlimits(plan, &failure) != OK) fail(error_fd, EDGY_STAGE_RLIMIT, failure.op_index, errno);
    if (step_identity(plan, &failure) != OK) fail(error_fd, failure.stage, -1, errno);
    syscall(SYS_umask, 022);
    // After the id changes, which clear it (prctl(2), PR_SET_PDEATHSIG).
    if (shape->parent_death_signal &&
        syscall(SYS_prctl, PR_SET_PDEATHSIG, shape->parent_death_signal, 0, 0, 0) != 0)
        fail(error_fd, EDGY_STAGE_PDEATHSIG_AGAIN, -1, errno);

    if (syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(error_fd, EDGY_STAGE_NO_NEW_PRIVS, -1, errno);
    // Last, so that nothing above has to be allowed by the workload's filter; unless it was loaded
    // while parked, when the task plan must carry none (two filters would stack).
    struct filter_pair late = {plan, plan->seccomp_filter, plan->seccomp_fallback, plan->seccomp_len,
                               plan->seccomp_fallback_len};
    if (shape->fs->seccomp_len && late.len) {
        errno = EPROTO;
        fail(error_fd, EDGY_STAGE_SECCOMP_LOAD, -1, errno);
    }
    if (step_seccomp(late, 0, error_fd, &failure) != OK) fail(error_fd, failure.stage, -1, errno);
    exec_workload(plan);
    fail(error_fd, EDGY_STAGE_EXECVE, -1, errno);
}

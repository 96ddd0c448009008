// Runs in the PARENT only. The parent half of a jail spawn: clone3 with signals blocked, the
// child's id maps, the gate and the error pipe. The child half is in child.c.
#include "include/edgy_jail.h"
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static int write_map(pid_t pid, const char *file, uint32_t base, uint32_t count) {
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int len = snprintf(line, sizeof line, "0 %u %u\n", base, count);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, line, (size_t)len);
    int saved = errno;
    close(fd);
    errno = saved;
    return n == len ? 0 : -1;
}

int edgy_spawn_start(const struct edgy_shape *shape, struct edgy_pending *pending,
                     struct edgy_child_error *error) {
    // Cloned in process: the child has this thread's policy and nice value.
    int result = edgy_spawn_start_flags(shape, pending, error, 0);
    int saved = errno;
    pending->background = edgy_thread_in_background();
    errno = saved;
    return result;
}

int edgy_spawn_start_flags(const struct edgy_shape *shape, struct edgy_pending *pending,
                           struct edgy_child_error *error, uint64_t extra_flags) {
    memset(error, 0, sizeof *error);
    error->op_index = -1;
    pending->pid = -1;
    pending->pidfd = pending->gate_fd = pending->error_fd = pending->plan_fd = pending->listener_fd = -1;
    pending->tracer_pid = -1;
    pending->trace_without_listener = 0;
    pending->background = 0;

    // The plan's memfd: written at release, mapped by the child after the gate.
    int plan_fd = (int)syscall(SYS_memfd_create, "edgy-plan", MFD_CLOEXEC);
    if (plan_fd < 0) {
        error->stage = EDGY_STAGE_CLONE;
        error->err = errno;
        return -1;
    }

    int gate[2], errpipe[2];
    if (pipe2(gate, O_CLOEXEC) != 0) {
        error->stage = EDGY_STAGE_CLONE;
        error->err = errno;
        close(plan_fd);
        return -1;
    }
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        error->stage = EDGY_STAGE_CLONE;
        error->err = errno;
        close(plan_fd);
        close(gate[0]);
        close(gate[1]);
        return -1;
    }

    struct clone_args args;
    memset(&args, 0, sizeof args);
    int pidfd = -1;
    args.flags = CLONE_PIDFD | CLONE_CLEAR_SIGHAND | shape->namespaces | extra_flags;
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    // clone3 refuses an exit signal with CLONE_PARENT: the child inherits ours (SIGCHLD).
    args.exit_signal = (extra_flags & CLONE_PARENT) ? 0 : SIGCHLD;
    if (shape->cgroup_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)shape->cgroup_fd;
    }

    // Block every signal so no handler of ours can run in the child before it resets them: a
    // handler installed by the runtime or a library would run on the child's copy of a parent
    // thread's state, with locks held by threads that do not exist there. CLONE_CLEAR_SIGHAND
    // resets the handlers themselves.
    //
    // All but SIGCHLD, which this thread leaves unblocked from now on (a new child cannot receive
    // it before it has children of its own). A jail's end sends SIGCHLD (execve makes it every
    // process's exit signal) to the thread that cloned it, and the kernel drops a signal whose
    // disposition ignores it, as SIGCHLD's default does, only when that thread does not block it.
    // Blocked, as Swift's threads and those started from them have it, it is queued to the
    // process instead and wakes a thread of edgyd at every jail's end, for nothing: exits are
    // learnt from pidfds (jail-lifecycle.md, "No SIGCHLD reaches edgyd").
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGCHLD);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) {
        edgy_child_main(shape, gate[0], errpipe[1], plan_fd);  // never returns
    }
    int clone_errno = errno;
    sigdelset(&old, SIGCHLD);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    close(gate[0]);
    close(errpipe[1]);
    if (pid < 0) {
        close(gate[1]);
        close(errpipe[0]);
        close(plan_fd);
        error->stage = EDGY_STAGE_CLONE;
        error->err = clone_errno;
        return -1;
    }
    pending->pid = (pid_t)pid;
    pending->pidfd = pidfd;
    pending->gate_fd = gate[1];
    pending->error_fd = errpipe[0];
    pending->plan_fd = plan_fd;

    if (shape->user_namespace) {
        // The parent is root in the initial namespace, so gid_map needs no "setgroups deny";
        // the child clears its supplementary groups itself.
        if (write_map(pending->pid, "uid_map", shape->host_uid_base, shape->id_count) != 0 ||
            write_map(pending->pid, "gid_map", shape->host_gid_base, shape->id_count) != 0) {
            error->stage = EDGY_STAGE_USERNS_MAP;
            error->err = errno;
            edgy_spawn_abort(pending);
            return -1;
        }
    }
    return 0;
}

/// Reads one whole error-pipe record; returns the bytes read (short on EOF or error).
static size_t read_record(int fd, struct edgy_child_error *record) {
    size_t got = 0;
    while (got < sizeof *record) {
        ssize_t n = read(fd, (char *)record + got, sizeof *record - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return got;
}

// Writes the gate's one byte ('p' to prepare, 'g' to go), retrying EINTR; the errno of a failed
// write goes to *write_errno, since reading the child's record next may change errno.
static ssize_t send_gate_byte(int gate_fd, char go, int *write_errno) {
    ssize_t w;
    do {
        w = write(gate_fd, &go, 1);
    } while (w < 0 && errno == EINTR);
    *write_errno = errno;
    return w;
}

/// The child's listener, by its fd number in the child: ours now, or -1 with `*error` filled in.
static int take_listener(struct edgy_pending *pending, int child_fd, struct edgy_child_error *error) {
    long listener = syscall(SYS_pidfd_getfd, pending->pidfd, child_fd, 0);
    if (listener < 0) {
        memset(error, 0, sizeof *error);
        error->stage = EDGY_STAGE_SECCOMP_LISTENER;
        error->err = errno;
        error->op_index = -1;
        return -1;
    }
    return (int)listener;
}

int edgy_spawn_prepare(struct edgy_pending *pending, struct edgy_child_error *error) {
    memset(error, 0, sizeof *error);
    error->op_index = -1;
    int write_errno = 0;
    ssize_t w = send_gate_byte(pending->gate_fd, 'p', &write_errno);
    struct edgy_child_error record;
    size_t got = read_record(pending->error_fd, &record);
    if (pending->filter_while_parked && got == sizeof record && record.stage == EDGY_STAGE_NONE) {
        // The notice that the filter is loaded (or, without a listener, its fallback): take the
        // listener, then a byte lets the child report that it is prepared.
        if (record.listener_fd >= 0) {
            int listener = take_listener(pending, record.listener_fd, error);
            if (listener < 0) return 1;
            pending->listener_fd = listener;
        }
        if (send_gate_byte(pending->gate_fd, 'l', &write_errno) == 1) got = read_record(pending->error_fd, &record);
        else got = 0;
    }
    if (got == sizeof record && record.stage == EDGY_STAGE_NONE) return 0;
    if (got == sizeof record) {
        *error = record;
        return 1;
    }
    errno = w != 1 ? write_errno : EPIPE;
    return -1;
}

/// How long the error pipe may stay silent after a filter loaded while parked has spoken.
#define SETUP_DENIED_GRACE_MS 5000

static int64_t monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/// Waits until the error pipe is readable. A filter loaded while parked stops only what its policy
/// forbids, and nothing answers its listener before the supervision starts: should it stop a call
/// of the child's own start, the child would wait forever, and so would we. A notification alone
/// does not tell: the workload may already run and have made it (its execve closed the pipe, but
/// a sibling cloned meanwhile may still hold a copy for a moment, so EOF can come later). So once
/// the listener speaks, the pipe has SETUP_DENIED_GRACE_MS to follow; if it does not, the child is
/// killed and `*error` names the call. 0 when the pipe is readable, 1 when the child was stopped.
static int wait_for_record(struct edgy_pending *pending, struct edgy_child_error *error) {
    if (!pending->filter_while_parked || pending->listener_fd < 0) return 0;
    int listener = pending->listener_fd;
    int64_t deadline = -1;
    for (;;) {
        struct pollfd fds[2] = {{.fd = pending->error_fd, .events = POLLIN},
                                {.fd = deadline < 0 ? listener : -1, .events = POLLIN}};
        int timeout = -1;
        if (deadline >= 0) {
            int64_t left = deadline - monotonic_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int ready = poll(fds, 2, timeout);
        if (ready < 0) {
            if (errno == EINTR) continue;
            return 0;  // read_record blocks or fails on its own
        }
        if (fds[0].revents) return 0;
        if (ready == 0) {
            struct edgy_seccomp_violation violation;
            int received = edgy_seccomp_receive(pending->listener_fd, &violation);
            edgy_pidfd_send_signal(pending->pidfd, SIGKILL);
            memset(error, 0, sizeof *error);
            error->stage = EDGY_STAGE_SETUP_DENIED;
            error->err = EPERM;
            error->op_index = received == 0 ? violation.nr : -1;
            return 1;
        }
        if (fds[1].revents & POLLIN) deadline = monotonic_ms() + SETUP_DENIED_GRACE_MS;
        else if (fds[1].revents) listener = -1;  // every task of the filter is gone: the pipe is left
    }
}

int edgy_spawn_release(struct edgy_pending *pending, const void *blob, size_t blob_len,
                       struct edgy_child_error *error) {
    memset(error, 0, sizeof *error);
    error->op_index = -1;
    // The child shares this open file: it maps whatever the file holds once the gate opens.
    size_t done = 0;
    while (done < blob_len) {
        ssize_t n = pwrite(pending->plan_fd, (const char *)blob + done, blob_len - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = errno;
            edgy_spawn_abort(pending);
            errno = saved ? saved : EIO;
            return -1;
        }
        done += (size_t)n;
    }
    close(pending->plan_fd);
    pending->plan_fd = -1;

    // A jail parked by the pool was set up in the background (`SCHED_IDLE`, nice 19): the workload
    // runs at the releasing thread's policy and priority. One cloned on demand already has them.
    if (pending->background) {
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (errno == 0) setpriority(PRIO_PROCESS, (id_t)pending->pid, nice);
        int policy = sched_getscheduler(0);
        struct sched_param no_priority = {0};
        if (policy == SCHED_OTHER || policy == SCHED_BATCH || policy == SCHED_IDLE)
            sched_setscheduler(pending->pid, policy, &no_priority);
    }
    int write_errno = 0;
    ssize_t w = send_gate_byte(pending->gate_fd, 'g', &write_errno);

    // EOF means execve succeeded (the pipe is CLOEXEC); a full record with a stage means a step
    // failed; one without is the notice that the seccomp filter is loaded. Its listener must be
    // ours before the child execs (execve closes the child's copy): the child waits for the gate
    // to close, which it does below either way.
    struct edgy_child_error record;
    if (wait_for_record(pending, error) != 0) {
        edgy_spawn_abort(pending);
        return 1;
    }
    size_t got = read_record(pending->error_fd, &record);
    if (got == sizeof record && record.stage == EDGY_STAGE_NONE) {
        if (record.listener_fd >= 0) {
            int listener = take_listener(pending, record.listener_fd, error);
            if (listener < 0) {
                edgy_spawn_abort(pending);
                return 1;
            }
            pending->listener_fd = listener;
        } else if (pending->trace_without_listener) {
            // A learning run whose child got no listener (a filter above has one): it loaded the
            // learning filter that traps instead, and waits at the gate; trace it before it execs.
            int32_t channel;
            pid_t tracer;
            int traced = edgy_tracer_start(pending->pid, &channel, &tracer);
            if (traced != 0) {
                memset(error, 0, sizeof *error);
                error->stage = EDGY_STAGE_SECCOMP_TRACER;
                error->err = -traced;
                error->op_index = -1;
                edgy_spawn_abort(pending);
                return 1;
            }
            pending->listener_fd = channel;
            pending->tracer_pid = tracer;
        }
        close(pending->gate_fd);
        pending->gate_fd = -1;
        got = read_record(pending->error_fd, &record);
    }
    if (pending->gate_fd >= 0) {
        close(pending->gate_fd);
        pending->gate_fd = -1;
    }
    close(pending->error_fd);
    pending->error_fd = -1;
    if (got == sizeof record) {
        *error = record;
        return 1;
    }
    if (w != 1) {
        // The child died before it could read the gate; the caller reaps it and classifies.
        errno = write_errno;
        return -1;
    }
    return 0;
}

void edgy_spawn_abort(struct edgy_pending *pending) {
    // Killed before its gate closes: a child waiting for the listener handoff's answer reads EOF
    // there as its word to exec.
    if (pending->pidfd >= 0) edgy_pidfd_send_signal(pending->pidfd, SIGKILL);
    if (pending->plan_fd >= 0) {
        close(pending->plan_fd);
        pending->plan_fd = -1;
    }
    if (pending->gate_fd >= 0) {
        close(pending->gate_fd);
        pending->gate_fd = -1;
    }
    if (pending->error_fd >= 0) {
        close(pending->error_fd);
        pending->error_fd = -1;
    }
    if (pending->listener_fd >= 0) {
        close(pending->listener_fd);
        pending->listener_fd = -1;
    }
    if (pending->tracer_pid > 0) {
        edgy_tracer_stop(pending->tracer_pid);
        pending->tracer_pid = -1;
    }
    if (pending->pidfd >= 0) {
        int code, status;
        edgy_waitid_pidfd(pending->pidfd, &code, &status, NULL, 0);
        close(pending->pidfd);
        pending->pidfd = -1;
    }
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int edgy_waitid_pidfd(int pidfd, int *code_out, int *status_out, struct rusage *usage, int nohang) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    for (;;) {
        long r = syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | (nohang ? WNOHANG : 0), usage);
        if (r == 0) break;
        if (errno == EINTR) continue;
        return -errno;
    }
    if (info.si_pid == 0) return -EAGAIN;  // WNOHANG and still running
    *code_out = info.si_code;
    *status_out = info.si_status;
    return 0;
}

int edgy_pidfd_send_signal(int pidfd, int sig) {
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0) return 0;
    return -errno;
}

int edgy_last_cap(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 40;
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 40;
    int v = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (buf[i] - '0');
    return v;
}

const char *edgy_stage_name(enum edgy_stage stage) {
    switch (stage) {
    case EDGY_STAGE_NONE: return "none";
    case EDGY_STAGE_CLONE: return "clone";
    case EDGY_STAGE_USERNS_MAP: return "user namespace map";
    case EDGY_STAGE_FIRST_GATE: return "first gate";
    case EDGY_STAGE_FDS: return "file descriptors";
    case EDGY_STAGE_SIGNAL_DISPOSITIONS: return "signal dispositions";
    case EDGY_STAGE_SETSID: return "setsid";
    case EDGY_STAGE_NS_ROOT: return "user namespace root";
    case EDGY_STAGE_CGROUP_NS: return "cgroup namespace";
    case EDGY_STAGE_MOUNT_PRIVATE: return "make mounts private";
    case EDGY_STAGE_MOUNT_ROOT: return "mount root tmpfs";
    case EDGY_STAGE_FS_OP: return "filesystem";
    case EDGY_STAGE_PIVOT_ROOT: return "pivot_root";
    case EDGY_STAGE_DETACH_OLD_ROOT: return "detach old root";
    case EDGY_STAGE_REMOUNT_ROOT_RO: return "remount root read-only";
    case EDGY_STAGE_CHDIR: return "chdir";
    case EDGY_STAGE_HOSTNAME: return "sethostname";
    case EDGY_STAGE_LOOPBACK: return "loopback";
    case EDGY_STAGE_RLIMIT: return "rlimit";
    case EDGY_STAGE_SETGROUPS: return "setgroups";
    case EDGY_STAGE_SETRESGID: return "setresgid";
    case EDGY_STAGE_CAP_BOUNDING: return "capability bounding set";
    case EDGY_STAGE_SECUREBITS: return "securebits";
    case EDGY_STAGE_SETRESUID: return "setresuid";
    case EDGY_STAGE_CAPS: return "capabilities";
    case EDGY_STAGE_NO_NEW_PRIVS: return "no_new_privs";
    case EDGY_STAGE_SECCOMP_LOAD: return "seccomp load";
    case EDGY_STAGE_EXECVE: return "execve";
    case EDGY_STAGE_PDEATHSIG: return "parent death signal";
    case EDGY_STAGE_TASK_PLAN_MAP: return "task plan map";
    case EDGY_STAGE_TASK_FILE: return "task files";
    case EDGY_STAGE_USERNS_LIMITS: return "user namespace limits";
    case EDGY_STAGE_MOUNT_RECURSIVE: return "recursive mount flags";
    case EDGY_STAGE_SECOND_GATE: return "second gate";
    case EDGY_STAGE_REPORT_PREPARED: return "report prepared";
    case EDGY_STAGE_SIGNAL_MASK: return "signal mask";
    case EDGY_STAGE_PDEATHSIG_AGAIN: return "parent death signal after id change";
    case EDGY_STAGE_SECCOMP_HANDOFF: return "seccomp listener handoff";
    case EDGY_STAGE_EGRESS_INTERFACE: return "egress interface";
    case EDGY_STAGE_EVENTFD: return "eventfd";
    case EDGY_STAGE_PIPES: return "pipes";
    case EDGY_STAGE_CGROUP: return "cgroup";
    case EDGY_STAGE_PLAN: return "plan";
    case EDGY_STAGE_SECCOMP_COMPILE: return "seccomp compile";
    case EDGY_STAGE_LOST_BEFORE_PREPARED: return "child lost before prepared";
    case EDGY_STAGE_LOST_AT_RELEASE: return "child lost at release";
    case EDGY_STAGE_SECCOMP_LISTENER: return "seccomp listener";
    case EDGY_STAGE_NETWORK: return "network";
    case EDGY_STAGE_SETUP_DENIED: return "jail start denied by the filter loaded while parked";
    case EDGY_STAGE_SECCOMP_TRACER: return "learning tracer (no seccomp listener: a filter above holds it; then ptrace of the jail)";
    }
    return "unknown";
}

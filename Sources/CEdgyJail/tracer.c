// The learning tracer: how a learning run observes the jail when seccomp user notification is
// not available to it. A process may have only one filter with a listener in its chain, so under
// a supervisor that is itself inside a sandbox using notification (a filter above edgyd holds a
// listener), the child's NEW_LISTENER load fails with EBUSY. The child then loads the same
// learning filter with SECCOMP_RET_TRACE where it had SECCOMP_RET_USER_NOTIF, and the parent forks
// this tracer before it lets the child exec.
//
// The tracer is a process of its own, forked from the supervisor and never exec'd, so it is
// single-threaded (ptrace belongs to one thread, and a thread of the supervisor could not wait
// for its tracees without reaping the supervisor's own children) and it is never the jail's real
// parent (a tracer's wait only detaches a tracee it did not fork; the real parent reaps it).
// From the fork on it runs raw syscalls only: no malloc, no locks, nothing of glibc's state.
//
// It speaks the notification protocol over a SOCK_SEQPACKET pair: for every trace stop it sends
// a `struct edgy_seccomp_violation` and waits for a `struct edgy_trace_answer`, then continues
// the call or skips it with the answer's errno. So the supervisor's learning observer answers a
// traced jail exactly as it answers a listener.
#include "include/edgy_jail.h"

#include <elf.h>
#include <errno.h>
#include <linux/ptrace.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <sys/user.h>
#elif defined(__aarch64__)
#include <asm/ptrace.h>
#endif

#ifndef NT_ARM_SYSTEM_CALL
#define NT_ARM_SYSTEM_CALL 0x404
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static long sys_ptrace(long request, pid_t pid, void *address, void *data) {
    return syscall(SYS_ptrace, request, pid, address, data);
}

/// Makes the stopped syscall of `tid` not run and return -`error`: its number becomes -1, its
/// return register -error (seccomp(2), SECCOMP_RET_TRACE).
static int skip_syscall(pid_t tid, int error) {
#if defined(__x86_64__)
    struct user_regs_struct regs;
    struct iovec io = {.iov_base = &regs, .iov_len = sizeof regs};
    if (sys_ptrace(PTRACE_GETREGSET, tid, (void *)(uintptr_t)NT_PRSTATUS, &io) != 0) return -1;
    regs.orig_rax = (unsigned long long)-1;
    regs.rax = (unsigned long long)(long long)-error;
    return (int)sys_ptrace(PTRACE_SETREGSET, tid, (void *)(uintptr_t)NT_PRSTATUS, &io);
#elif defined(__aarch64__)
    int number = -1;
    struct iovec call = {.iov_base = &number, .iov_len = sizeof number};
    if (sys_ptrace(PTRACE_SETREGSET, tid, (void *)(uintptr_t)NT_ARM_SYSTEM_CALL, &call) != 0) return -1;
    struct user_pt_regs regs;
    struct iovec io = {.iov_base = &regs, .iov_len = sizeof regs};
    if (sys_ptrace(PTRACE_GETREGSET, tid, (void *)(uintptr_t)NT_PRSTATUS, &io) != 0) return -1;
    regs.regs[0] = (unsigned long long)(long long)-error;
    return (int)sys_ptrace(PTRACE_SETREGSET, tid, (void *)(uintptr_t)NT_PRSTATUS, &io);
#else
    (void)tid;
    (void)error;
    errno = ENOSYS;
    return -1;
#endif
}

static int send_all(int channel, const void *bytes, size_t size) {
    long n;
    do {
        n = syscall(SYS_sendto, channel, bytes, size, MSG_NOSIGNAL, NULL, 0);
    } while (n < 0 && errno == EINTR);
    return n == (long)size ? 0 : -1;
}

/// One trace stop of `tid`: asks the supervisor and applies its answer. -1 when the supervisor is
/// gone (the tracer then exits, and PTRACE_O_EXITKILL kills every tracee).
static int answer_trace_stop(int channel, pid_t tid, uint64_t id) {
    struct ptrace_syscall_info info;
    memset(&info, 0, sizeof info);
    long got = sys_ptrace(PTRACE_GET_SYSCALL_INFO, tid, (void *)sizeof info, &info);
    if (got < (long)(offsetof(struct ptrace_syscall_info, seccomp.ret_data) + sizeof info.seccomp.ret_data) ||
        info.op != PTRACE_SYSCALL_INFO_SECCOMP) {
        return 0;  // not a seccomp stop after all (or the tracee is gone): just continue it
    }
    struct edgy_seccomp_violation call;
    memset(&call, 0, sizeof call);
    call.id = id;
    call.pid = tid;
    call.nr = (int32_t)info.seccomp.nr;
    call.arch = info.arch;
    for (int i = 0; i < 6; i++) call.args[i] = info.seccomp.args[i];
    if (send_all(channel, &call, sizeof call) != 0) return -1;
    struct edgy_trace_answer answer;
    long n;
    do {
        n = syscall(SYS_recvfrom, channel, &answer, sizeof answer, 0, NULL, NULL);
    } while (n < 0 && errno == EINTR);
    if (n != (long)sizeof answer || answer.id != id) return -1;
    if (answer.error != 0) skip_syscall(tid, answer.error);
    return 0;
}

/// The tracer process: seizes `pid`, reports the result as an int32 on `channel`, then answers
/// trace stops until no tracee is left or the supervisor hangs up.
static void tracer_main(pid_t pid, int channel, pid_t parent) {
    // No handler of the supervisor's runs here; SIGKILL (the supervisor's stop) still does.
    sigset_t all;
    memset(&all, 0xff, sizeof all);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(uint64_t));
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (syscall(SYS_getppid) != parent) syscall(SYS_exit_group, 1);
    // Nothing of the supervisor's stays open here (another jail's pipe end would never see EOF
    // while this lives): only the channel, moved to fd 3.
    if (channel != 3) {
        if (syscall(SYS_dup3, channel, 3, 0) < 0) syscall(SYS_exit_group, 1);
        channel = 3;
    }
    if (syscall(SYS_close_range, 4, ~0U, 0) != 0) {
        for (int fd = 4; fd < 65536; fd++) syscall(SYS_close, fd);
    }

    long options = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                   PTRACE_O_EXITKILL;
    int32_t seized = sys_ptrace(PTRACE_SEIZE, pid, NULL, (void *)options) == 0 ? 0 : errno;
    if (send_all(channel, &seized, sizeof seized) != 0 || seized != 0) syscall(SYS_exit_group, 1);

    uint64_t next_id = 1;
    for (;;) {
        int status = 0;
        long tid = syscall(SYS_wait4, -1, &status, __WALL, NULL);
        if (tid < 0) {
            if (errno == EINTR) continue;
            syscall(SYS_exit_group, 0);  // ECHILD: every tracee is gone
        }
        if (!WIFSTOPPED(status)) continue;  // a tracee exited
        int sig = WSTOPSIG(status);
        int event = (unsigned)status >> 16;
        long inject = 0;
        if (sig == SIGTRAP && event == PTRACE_EVENT_SECCOMP) {
            if (answer_trace_stop(channel, (pid_t)tid, next_id++) != 0) syscall(SYS_exit_group, 1);
        } else if (event == PTRACE_EVENT_STOP) {
            // A new tracee's first stop, or a group stop: a learning run resumes both.
        } else if (sig == SIGTRAP && event != 0) {
            // fork, vfork, clone: the new task is traced from its first instruction.
        } else {
            inject = sig;  // a signal on its way to the tracee: deliver it
        }
        sys_ptrace(PTRACE_CONT, (pid_t)tid, NULL, (void *)inject);
    }
}

int edgy_tracer_start(pid_t pid, int32_t *channel, pid_t *tracer) {
    *channel = -1;
    *tracer = -1;
#if !defined(__x86_64__) && !defined(__aarch64__)
    (void)pid;
    return -ENOSYS;
#else
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return -errno;
    pid_t parent = getpid();
    // A plain fork without glibc's fork handlers: the child runs only the raw syscalls above.
    long child = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, NULL);
    if (child < 0) {
        int saved = errno;
        close(pair[0]);
        close(pair[1]);
        return -saved;
    }
    if (child == 0) {
        tracer_main(pid, pair[1], parent);
        syscall(SYS_exit_group, 1);
    }
    close(pair[1]);
    int32_t seized = EPROTO;
    ssize_t n;
    do {
        n = recv(pair[0], &seized, sizeof seized, 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof seized || seized != 0) {
        close(pair[0]);
        edgy_tracer_stop((pid_t)child);
        return n == (ssize_t)sizeof seized ? -seized : -EPROTO;
    }
    *channel = pair[0];
    *tracer = (pid_t)child;
    return 0;
#endif
}

int edgy_tracer_receive(int channel, struct edgy_seccomp_violation *call) {
    ssize_t n;
    do {
        n = recv(channel, call, sizeof *call, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    return n == (ssize_t)sizeof *call ? 0 : -EPIPE;
}

int edgy_tracer_respond(int channel, uint64_t id, int error) {
    struct edgy_trace_answer answer = {.id = id, .error = error};
    ssize_t n;
    do {
        n = send(channel, &answer, sizeof answer, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof answer ? 0 : -errno;
}

void edgy_tracer_stop(pid_t tracer) {
    if (tracer <= 0) return;
    kill(tracer, SIGKILL);
    int status;
    while (waitpid(tracer, &status, 0) < 0 && errno == EINTR) {
    }
}

/*
 * edgy-probe: runs INSIDE jails (and under test filters). Not part of the child checklist: it is
 * an ordinary program, exec'd as the workload, that tries one thing the jail should decide about
 * (in the spirit of bubblewrap's tests/try-syscall.c).
 *
 *   edgy-probe ACTION [ARGS]
 *   edgy-probe filter FILE -- ACTION [ARGS]   load the BPF program in FILE (raw struct sock_filter
 *                                             array) after PR_SET_NO_NEW_PRIVS, then run ACTION
 *
 * Output is one line: "ok", a value, or "denied errno=NAME". Exit 0 when the thing was possible,
 * 1 when it failed, 2 on a usage error. A seccomp kill shows up to the caller as SIGSYS.
 * For `syscall NAME` the arguments are deliberately harmless or invalid: "reached errno=EINVAL"
 * (exit 0) means the kernel got past seccomp and capability checks to argument validation;
 * EPERM, EACCES and ENOSYS count as refused (exit 1).
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>

static int fail(const char *what) {
    const char *name = strerrorname_np(errno);
    printf("denied errno=%s%s%s\n", name ? name : "?", what ? " " : "", what ? what : "");
    return 1;
}

static int usage(void) {
    fprintf(stderr, "usage: edgy-probe [filter FILE --] ACTION [ARGS]\n"
                    "actions: syscall NAME | thread-syscall NAME | clone-ns FLAG | clone3-ns | ioctl-tiocsti | ioctl REQUEST | socket FAMILY | x32 | i386\n"
                    "         fds | read PATH | write PATH | net | caps | ids | hostname | pids | fork-thread | exec PATH\n"
                    "         inotify COUNT [HOLD_SECONDS]\n");
    return 2;
}

/* ---- syscall NAME: one dangerous syscall with harmless arguments ---- */

#define BAD "/nonexistent-edgy-probe"
struct probe_call { const char *name; long nr; long a[6]; };

static const struct probe_call calls[] = {
    { "getpid", SYS_getpid, { 0 } },
    { "ptrace", SYS_ptrace, { 0 /* PTRACE_TRACEME */ } },
    { "mount", SYS_mount, { 0, 0, 0, 0, 0 } },
    { "umount2", SYS_umount2, { (long)BAD, 0 } },
    { "pivot_root", SYS_pivot_root, { (long)BAD, (long)BAD } },
    { "chroot", SYS_chroot, { (long)BAD } },
    { "unshare", SYS_unshare, { CLONE_NEWUSER } },
    { "setns", SYS_setns, { -1, 0 } },
    { "bpf", SYS_bpf, { 9999, 0, 0 } },
    { "perf_event_open", SYS_perf_event_open, { 0, 0, -1, -1, 0 } },
    { "userfaultfd", SYS_userfaultfd, { 0x7fffffff } },
    { "keyctl", SYS_keyctl, { 0xffff } },
    { "add_key", SYS_add_key, { 0, 0, 0, 0, 0 } },
    { "request_key", SYS_request_key, { 0, 0, 0, 0 } },
    { "init_module", SYS_init_module, { 0, 0, 0 } },
    { "finit_module", SYS_finit_module, { -1, 0, 0 } },
    { "delete_module", SYS_delete_module, { (long)"nonexistent_edgy_probe", O_NONBLOCK } },
    { "kexec_load", SYS_kexec_load, { 0, 0, 0, 0xdead0000 /* invalid flags */ } },
    { "kexec_file_load", SYS_kexec_file_load, { -1, -1, 0, 0, 0xdead0000 } },
    { "reboot", SYS_reboot, { 0x1234, 0x5678, 0, 0 } /* bad magic: EINVAL */ },
    { "swapon", SYS_swapon, { (long)BAD, 0 } },
    { "swapoff", SYS_swapoff, { (long)BAD } },
    { "open_by_handle_at", SYS_open_by_handle_at, { -1, 0, 0 } },
    { "name_to_handle_at", SYS_name_to_handle_at, { -1, 0, 0, 0, 0 } },
    { "io_uring_setup", SYS_io_uring_setup, { 0, 0 } },
    { "io_uring_enter", SYS_io_uring_enter, { -1, 0, 0, 0, 0, 0 } },
    { "io_uring_register", SYS_io_uring_register, { -1, 0, 0, 0 } },
    { "settimeofday", SYS_settimeofday, { 0, 0 } },
    { "clock_settime", SYS_clock_settime, { 0, 0 } },
    { "clock_adjtime", SYS_clock_adjtime, { 0, 0 } },
    { "adjtimex", SYS_adjtimex, { 0 } },
    { "acct", SYS_acct, { (long)BAD } },
    { "iopl", SYS_iopl, { 4 /* > 3: EINVAL */ } },
    { "ioperm", SYS_ioperm, { 0x80, 1, 0 /* turn off */ } },
    { "process_vm_readv", SYS_process_vm_readv, { 0 /* pid: filled in */, 0, 0, 0, 0, 0 } },
    { "process_vm_writev", SYS_process_vm_writev, { 0, 0, 0, 0, 0, 0 } },
    { "personality", SYS_personality, { 0xffffffff /* query */ } },
    { "syslog", SYS_syslog, { 10 /* SYSLOG_ACTION_SIZE_BUFFER */ } },
    { "sethostname", SYS_sethostname, { 0, 100000 /* too long: EINVAL */ } },
    { "fanotify_init", SYS_fanotify_init, { 0x7fffffff, 0 } },
    { "kcmp", SYS_kcmp, { 0, 0, 0xffff, 0, 0 } },
    { "pidfd_getfd", SYS_pidfd_getfd, { -1, 0, 0 } },
    { "quotactl", SYS_quotactl, { 0, 0, 0, 0 } },
    { "fsopen", SYS_fsopen, { 0, 0 } },
    { "open_tree", SYS_open_tree, { -1, 0, 0 } },
    { "lookup_dcookie", SYS_lookup_dcookie, { 0, 0, 0 } },
    { "vhangup", -1, { 0 } }, /* never run for real: it would hang up our terminal */
};

static int do_syscall(const char *name) {
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        const struct probe_call *c = &calls[i];
        if (strcmp(c->name, name) != 0) continue;
        long a0 = c->a[0];
        if (c->nr == SYS_process_vm_readv || c->nr == SYS_process_vm_writev) a0 = getpid();
        long nr = c->nr == -1 ? SYS_vhangup : c->nr;
        if (c->nr == -1) { fprintf(stderr, "edgy-probe: %s is not probed\n", name); return 2; }
        long r = syscall(nr, a0, c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
        if (r >= 0) { printf("ok\n"); return 0; }
        if (errno == EPERM || errno == EACCES || errno == ENOSYS) return fail(NULL);
        printf("reached errno=%s\n", strerrorname_np(errno));
        return 0;
    }
    fprintf(stderr, "edgy-probe: unknown syscall %s\n", name);
    return 2;
}

static void *syscall_thread(void *name) { return (void *)(intptr_t)do_syscall(name); }

/* The call from a second thread; the main thread prints whether the process outlived it. */
static int do_thread_syscall(const char *name) {
    pthread_t t;
    void *result;
    if (pthread_create(&t, NULL, syscall_thread, (void *)name) != 0) return fail("pthread_create");
    pthread_join(t, &result);
    printf("process survived\n");
    return (int)(intptr_t)result;
}

/* ---- namespaces through clone and clone3 ---- */

static const struct { const char *name; unsigned long flag; } ns_flags[] = {
    { "CLONE_NEWUSER", CLONE_NEWUSER }, { "CLONE_NEWNS", CLONE_NEWNS }, { "CLONE_NEWPID", CLONE_NEWPID },
    { "CLONE_NEWNET", CLONE_NEWNET }, { "CLONE_NEWUTS", CLONE_NEWUTS }, { "CLONE_NEWIPC", CLONE_NEWIPC },
    { "CLONE_NEWCGROUP", CLONE_NEWCGROUP }, { "none", 0 },
};

static int reap(long pid) {
    if (pid < 0) return fail(NULL);
    if (pid == 0) _exit(0); /* the child: nothing else to do */
    int status;
    waitpid((pid_t)pid, &status, __WALL);
    printf("ok\n");
    return 0;
}

static int do_clone_ns(const char *flag_name) {
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
        if (strcmp(ns_flags[i].name, flag_name) != 0) continue;
        /* x86_64 raw clone(flags, stack, parent_tid, child_tid, tls); stack 0 = fork-like. */
        return reap(syscall(SYS_clone, ns_flags[i].flag | SIGCHLD, 0, 0, 0, 0));
    }
    fprintf(stderr, "edgy-probe: unknown clone flag %s\n", flag_name);
    return 2;
}

static int do_clone3_ns(void) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_NEWUSER;
    args.exit_signal = SIGCHLD;
    return reap(syscall(SYS_clone3, &args, sizeof args));
}

/* ---- other ABIs ---- */

static int do_x32(void) {
    long r = syscall(SYS_getpid | 0x40000000 /* __X32_SYSCALL_BIT */);
    if (r < 0) return fail(NULL);
    printf("%ld\n", r);
    return 0;
}

static int do_i386(void) {
    long r;
    /* i386 getpid is 20; the kernel zeroes r8-r11 on int $0x80 entry. */
    __asm__ volatile("int $0x80" : "=a"(r) : "0"(20L) : "memory", "r8", "r9", "r10", "r11");
    if (r < 0) { errno = (int)-r; return fail(NULL); }
    printf("%ld\n", r);
    return 0;
}

/* ---- descriptors, files, network, identity ---- */

static int do_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return fail("/proc/self/fd");
    int self = dirfd(d);
    struct dirent *e;
    const char *sep = "";
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
        printf("%s%s", sep, e->d_name);
        sep = " ";
    }
    printf("\n");
    closedir(d);
    return 0;
}

static int do_read(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(path);
    char buf[1];
    if (read(fd, buf, 1) < 0 && errno != EISDIR) { close(fd); return fail(path); }
    close(fd);
    printf("ok\n");
    return 0;
}

static int do_write(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(path);
    if (write(fd, "edgy\n", 5) != 5) { close(fd); return fail(path); }
    close(fd);
    printf("ok\n");
    return 0;
}

static int do_net(void) {
    struct if_nameindex *ifs = if_nameindex();
    if (!ifs) return fail(NULL);
    const char *sep = "";
    for (struct if_nameindex *i = ifs; i->if_index; i++) { printf("%s%s", sep, i->if_name); sep = " "; }
    printf("\n");
    if_freenameindex(ifs);
    return 0;
}

static int do_caps(void) {
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) return fail("/proc/self/status");
    char line[256];
    static const char *keys[] = { "CapEff:", "CapPrm:", "CapBnd:", "NoNewPrivs:", "Seccomp:" };
    while (fgets(line, sizeof line, f))
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strncmp(line, keys[i], strlen(keys[i])) == 0) fputs(line, stdout);
    fclose(f);
    return 0;
}

static int do_pids(void) {
    DIR *d = opendir("/proc");
    if (!d) return fail("/proc");
    struct dirent *e;
    const char *sep = "";
    while ((e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') { printf("%s%s", sep, e->d_name); sep = " "; }
    printf("\n");
    closedir(d);
    return 0;
}

static int do_socket(const char *family) {
    static const struct { const char *name; int af; } families[] = {
        { "unix", AF_UNIX }, { "inet", AF_INET }, { "inet6", AF_INET6 }, { "netlink", AF_NETLINK }, { "packet", AF_PACKET },
    };
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        if (strcmp(families[i].name, family) != 0) continue;
        int type = families[i].af == AF_NETLINK || families[i].af == AF_PACKET ? SOCK_RAW : SOCK_STREAM;
        int fd = socket(families[i].af, type | SOCK_CLOEXEC, 0);
        if (fd < 0) return fail(NULL);
        close(fd);
        printf("ok\n");
        return 0;
    }
    fprintf(stderr, "edgy-probe: unknown family %s\n", family);
    return 2;
}

static void *thread_main(void *arg) { return arg; }

static int do_fork_thread(void) {
    pthread_t t;
    int err = pthread_create(&t, NULL, thread_main, NULL);
    if (err) { errno = err; return fail(NULL); }
    pthread_join(t, NULL);
    printf("ok\n");
    return 0;
}

/* ---- filter FILE -- ACTION: load a BPF program, then probe ---- */

static int load_filter(const char *path) {
    static struct sock_filter insns[BPF_MAXINSNS];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(path);
    ssize_t n = read(fd, insns, sizeof insns);
    close(fd);
    if (n <= 0 || n % sizeof insns[0] != 0) { fprintf(stderr, "edgy-probe: bad filter %s\n", path); return 2; }
    struct sock_fprog prog = { .len = (unsigned short)(n / sizeof insns[0]), .filter = insns };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail("no_new_privs");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return fail("seccomp");
    return 0;
}

/* ---- inotify N SECONDS: hold up to N inotify instances for SECONDS, then report how many ---- */

static int do_inotify(const char *count_arg, const char *hold_arg) {
    long want = strtol(count_arg, NULL, 10), hold = hold_arg ? strtol(hold_arg, NULL, 10) : 0;
    long held = 0;
    int err = 0;
    for (; held < want; held++) {
        if (inotify_init1(IN_CLOEXEC) < 0) { err = errno; break; }
    }
    if (hold > 0) sleep((unsigned)hold);
    const char *name = err ? strerrorname_np(err) : "none";
    printf("held=%ld errno=%s\n", held, name ? name : "?");
    return held == want ? 0 : 1;
}

static int run(int argc, char **argv) {
    if (argc < 1) return usage();
    const char *a = argv[0], *arg = argc > 1 ? argv[1] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(a, "filter")) {
        if (argc < 4 || strcmp(argv[2], "--") != 0) return usage();
        int r = load_filter(argv[1]);
        return r ? r : run(argc - 3, argv + 3);
    }
    if (!strcmp(a, "syscall") && arg) return do_syscall(arg);
    if (!strcmp(a, "thread-syscall") && arg) return do_thread_syscall(arg);
    if (!strcmp(a, "clone-ns") && arg) return do_clone_ns(arg);
    if (!strcmp(a, "clone3-ns")) return do_clone3_ns();
    if (!strcmp(a, "ioctl-tiocsti")) {
        char c = 'x';
        if (ioctl(0, TIOCSTI, &c) != 0) return fail(NULL);
        printf("ok\n");
        return 0;
    }
    if (!strcmp(a, "ioctl") && arg) {
        /* Raw, so all 64 bits of the request reach the filter (the kernel uses the low 32). */
        char c = 'x';
        if (syscall(SYS_ioctl, 0, strtoul(arg, NULL, 0), &c) != 0) return fail(NULL);
        printf("ok\n");
        return 0;
    }
    if (!strcmp(a, "socket") && arg) return do_socket(arg);
    if (!strcmp(a, "x32")) return do_x32();
    if (!strcmp(a, "i386")) return do_i386();
    if (!strcmp(a, "fds")) return do_fds();
    if (!strcmp(a, "read") && arg) return do_read(arg);
    if (!strcmp(a, "write") && arg) return do_write(arg);
    if (!strcmp(a, "net")) return do_net();
    if (!strcmp(a, "caps")) return do_caps();
    if (!strcmp(a, "ids")) { printf("uid=%d gid=%d euid=%d egid=%d\n", getuid(), getgid(), geteuid(), getegid()); return 0; }
    if (!strcmp(a, "hostname")) {
        char name[256];
        if (gethostname(name, sizeof name) != 0) return fail(NULL);
        printf("%s\n", name);
        return 0;
    }
    if (!strcmp(a, "pids")) return do_pids();
    if (!strcmp(a, "inotify") && arg) return do_inotify(arg, argc > 2 ? argv[2] : NULL);
    if (!strcmp(a, "fork-thread")) return do_fork_thread();
    if (!strcmp(a, "exec") && arg) {
        execv(arg, argv + 1);
        return fail(arg);
    }
    return usage();
}

int main(int argc, char **argv) { return run(argc - 1, argv + 1); }

extension TestSupport {
    /// A launcher, `launcher + [program] + arguments`, that runs a program under a seccomp filter
    /// holding a listener (it allows everything and never notifies), as a container runtime's
    /// notify agent would: Linux gives a process one listener among all its filters, so nothing
    /// below it can get one of its own (`EBUSY`).
    public static let underASeccompListener: [String] = ["/usr/bin/python3", "-c", """
        import ctypes, os, struct, sys
        libc = ctypes.CDLL(None, use_errno=True)
        allow = ctypes.create_string_buffer(struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000))
        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
        program = SockFprog(1, ctypes.addressof(allow))
        listener = libc.syscall(317, 1, 1 << 3, ctypes.byref(program))  # seccomp(SET_MODE_FILTER, NEW_LISTENER), x86_64
        if listener < 0:
            sys.exit(f"seccomp: errno {ctypes.get_errno()}")
        os.set_inheritable(listener, True)  # the listener lives as long as some process holds it
        os.execv(sys.argv[1], sys.argv[1:])
        """]
}

"""The program the sandbox's child runs (``python -I -S -c BOOT``): it drops privileges, sets
the limits, installs the audit hook, runs ``main.py``, then the tests, then reports to the parent.
Its comparison guard is what :func:`dataloop.sandbox.guard_comparisons` rewrites the tests'
comparisons to call (``__dataloop_compare__`` and its operator names).

Run with ``-c`` so the program cannot replace it. Everything it needs later is bound in local
variables before the program's first line: the program may rebind builtins and module
attributes, but cannot reach these frames (the hook denies frame access)."""

BOOT = r"""
import builtins
# The harness's functions look builtins up in this copy, taken before the program's first line:
# the program may rebind builtins.isinstance; what the harness calls stays the real one.
__builtins__ = dict(builtins.__dict__)


def _run():
    import _operator, json, os, resource, sys
    cfg = json.loads(sys.stdin.buffer.read())  # not argv: sys.orig_argv is readable
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    nonce, fd, write = cfg.pop("nonce").encode(), cfg["report_fd"], os.write
    if cfg["drop"]:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    mb = 1 << 20
    for name, soft in (("RLIMIT_CPU", cfg["cpu"]), ("RLIMIT_AS", cfg["mem"] * mb),
                       ("RLIMIT_FSIZE", cfg["fsize"] * mb), ("RLIMIT_NOFILE", 64),
                       ("RLIMIT_CORE", 0), ("RLIMIT_NPROC", 0)):
        kind = getattr(resource, name)
        resource.setrlimit(kind, (soft, soft + 1 if name == "RLIMIT_CPU" else soft))
    if cfg["report"]:
        print(json.dumps({"uid": os.getuid(), "isolation": cfg["isolation"]}), file=sys.stderr)
    source = compile(cfg["source"], "main.py", "exec")
    setup = compile(cfg["setup"], "setup.py", "exec")
    tests = None if cfg["tests"] is None else compile(cfg["tests"], "tests.py", "exec")
    clean = dict(builtins.__dict__)
    real, fspath, startswith = os.path.realpath, os.fspath, str.startswith
    work = real(os.getcwd())
    install = tuple(real(p) for p in sys.path if p)
    read_ok = (*install, work, "/dev/null")
    # A signal handler receives the current frame: no handlers at all.
    sys.modules.pop("_signal", None)
    deny = ("socket.", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn",
            "os.system", "os.kill", "os.killpg", "subprocess.", "ctypes.", "pty.", "_thread.",
            "resource.setrlimit", "os.setuid", "os.setgid", "sys.settrace", "sys.setprofile",
            "sys._current_frames", "sys.addaudithook", "gc.get_", "cpython.PyInterpreterState")
    frame_attrs = ("tb_frame", "gi_frame", "cr_frame", "ag_frame")
    # Audited operations that change the file system, and how many dir_fd arguments end theirs.
    mutate = {"os.remove": 1, "os.rename": 2, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1,
              "os.chown": 1, "os.truncate": 0, "os.symlink": 1, "os.link": 2, "os.utime": 1,
              "shutil.rmtree": 1, "os.chdir": 0}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    exists, isdir = os.path.lexists, os.path.isdir
    # Files, directories and links made; files that hold data, each at most fsize.
    limit, created = {"files": cfg["files"], "data files": cfg["data_files"]}, {}

    def create(what, kind="files"):
        created[kind] = created.get(kind, 0) + 1
        if created[kind] > limit[kind]:
            raise PermissionError(f"sandbox: {what}: more than {limit[kind]} {kind} created")

    def inside(path, roots):
        try:
            path = fspath(path)
            p = real(path.decode() if isinstance(path, bytes) else path)
        except (TypeError, ValueError):
            return False
        return any(p == r or startswith(p, r.rstrip("/") + "/") for r in roots)

    def hook(event, args):
        if startswith(event, deny):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event in ("sys._getframe", "sys._getframemodulename"):
            raise ValueError("sandbox: frames are not available")  # what its callers catch
        if event == "object.__getattr__" and args[1] in frame_attrs:
            raise PermissionError(f"sandbox: {args[1]} is not available")
        if event == "import" and args[0] in ("_signal", "signal"):
            raise PermissionError("sandbox: signal handlers are not allowed")
        if event == "import" and args[1] is not None and not inside(args[1], install):
            raise PermissionError(f"sandbox: native module {args[1]} is not allowed")
        if event == "open":
            path, flags = args[0], args[2]
            if path is None or isinstance(path, int):
                return
            if not inside(path, (work,) if (flags or 0) & write_flags else read_ok):
                raise PermissionError(f"sandbox: access to {path} is not allowed")
            # A directory's descriptor would let a later open (whose audit event does not
            # carry dir_fd) name a path relative to it: outside, while it looks inside.
            if isdir(path):
                raise PermissionError(f"sandbox: opening the directory {path} is not allowed")
            if (flags or 0) & os.O_CREAT and not exists(path):
                create(path)
                create(path, "data files")
        elif event in ("os.listdir", "os.scandir"):
            if isinstance(args[0], (str, bytes)) and not inside(args[0], read_ok):
                raise PermissionError(f"sandbox: listing {args[0]} is not allowed")
        elif event in mutate:
            count = mutate[event]
            # Relative to a directory descriptor, a path that looks inside can lie outside.
            if any(d not in (None, -1) for d in args[len(args) - count :]):
                raise PermissionError(f"sandbox: {event} with dir_fd is not allowed")
            paths = [a for a in args if not isinstance(a, (int, type(None), tuple))]
            if not all(inside(p, (work,)) for p in paths):
                raise PermissionError(f"sandbox: {event} outside the working directory")
            if event in ("os.mkdir", "os.symlink", "os.link"):
                create(paths[-1])

    plain_types = (bool, int, float, complex, str, bytes, type(None), list, tuple, dict, set,
                   frozenset)
    slots = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__contains__")
    # The class's real MRO and each class's own __dict__: a metaclass can stand a property
    # named __eq__ in front of type.__getattribute__, not in front of these.
    mro_of, dict_of = type.__dict__["__mro__"].__get__, type.__dict__["__dict__"].__get__
    name_of = type.__dict__["__name__"].__get__

    def slot(tp, name):
        for klass in mro_of(tp):
            own = dict_of(klass)
            if name in own:
                return own[name]
        return None

    def plain(value):
        # Builtin data all the way down; a subclass only if it compares as its builtin does.
        stack, seen = [value], set()
        while stack:
            item = stack.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            tp = type(item)
            base = next((b for b in plain_types if tp is b or issubclass(tp, b)), None)
            if base is None or any(slot(tp, n) is not slot(base, n) for n in slots):
                return False
            if base is dict:
                stack.extend(dict.keys(item))
                stack.extend(dict.values(item))
            elif base in (list, tuple, set, frozenset):
                stack.extend(base.__iter__(item))
        return True

    ops = {"==": _operator.eq, "!=": _operator.ne, "<": _operator.lt, "<=": _operator.le,
           ">": _operator.gt, ">=": _operator.ge, "in": lambda a, b: _operator.contains(b, a),
           "not in": lambda a, b: not _operator.contains(b, a)}

    atoms = (bool, int, float, complex, str, bytes, type(None))
    as_atom = {int: int.__int__, float: float.__float__, complex: complex.__complex__,
               str: str.__str__, bytes: bytes.__bytes__}

    def copy_plain(value):
        # The builtin types exactly, read from each builtin's own storage: no method of the
        # value's class runs, and the tests' arithmetic and comparisons are the builtins'.
        tp = type(value)
        if tp in atoms:
            return value
        base = next((b for b in plain_types if issubclass(tp, b)), None)
        if base is None:
            raise TypeError(f"sandbox: a {name_of(tp)} was returned, not plain data")
        if base in as_atom:
            return as_atom[base](value)
        if base is dict:
            return {copy_plain(k): copy_plain(v) for k, v in dict.items(value)}
        items = [copy_plain(v) for v in base.__iter__(value)]
        return items if base is list else base(items)

    def exported(value, name):
        # What the tests get of the program: its functions, whose results are copied to plain
        # data; a module it imported is the tests' own import of that name; other values copied.
        if type(value) is type(sys):
            return __import__(name)
        if not callable(value):
            return copy_plain(value)

        def call(*args, **kwargs):
            return copy_plain(value(*args, **kwargs))

        return call

    def compare(left, names, rights):
        for name, right in zip(names, rights):
            if plain(left) != plain(right) or not ops[name](left, right):
                return False
            left = right
        return True

    vars(sys.modules["__main__"])["__builtins__"] = builtins  # the copy stays out of reach
    sys.addaudithook(hook)
    sys.argv = ["main.py"]
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    exec(source, namespace)
    if tests is not None:
        # Their own namespace and builtins: the program cannot rebind what the tests call, and
        # gives them only the names they take from it, never its other globals.
        checks = {"__name__": "__main__", "__builtins__": clean, "__dataloop_compare__": compare}
        exec(setup, checks)
        for name in cfg["names"]:
            if name in namespace:
                checks[name] = exported(namespace[name], name)
        exec(tests, checks)
    write(fd, nonce + b"\n")


_run()
"""
